"""What each daemon reports, as Prometheus metric families (no sockets, no server).

Every family is named ``relaax_<role>_<what>`` with its unit (``_seconds``, ``_sessions``,
``_per_second``) and ``_total`` for counters, and carries the labels ``role`` and ``name``
(the daemon's name: ``broker``, ``worker-0@node-7``, ``shard-1``). ``FAMILIES`` maps a daemon
kind (``PrometheusConfig``'s keys) to the function that reads its published figures.
docs/prometheus.md lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

#: The role label of each daemon kind.
ROLE = {
    "broker": "broker",
    "collector": "collector",
    "gateway": "gateway",
    "shards": "shard",
    "workers": "worker",
    "autoscaler": "autoscaler",
    "learners": "learner",
    "replay": "replay",
}


@dataclass
class Families:
    """Metric families being built for one daemon (labels ``role`` and ``name`` on each)."""

    role: str
    name: str
    found: dict[str, Metric] = field(default_factory=dict)

    def _family(self, kind: str, metric: str, doc: str, labels: tuple[str, ...]) -> Metric:
        full = f"relaax_{self.role}_{metric}"
        family = self.found.get(full)
        if family is None:
            make = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = make(full, doc, labels=["role", "name", *labels])
            self.found[full] = family
        return family

    def _add(self, kind: str, metric: str, doc: str, value: float, labels: dict[str, str]) -> None:
        family = self._family(kind, metric, doc, tuple(labels))
        family.add_metric([self.role, self.name, *labels.values()], float(value))

    def gauge(self, metric: str, doc: str, value: float, **labels: str) -> None:
        self._add("gauge", metric, doc, value, labels)

    def counter(self, metric: str, doc: str, value: float, **labels: str) -> None:
        """``metric`` without ``_total`` (prometheus-client adds it)."""
        self._add("counter", metric, doc, value, labels)

    def counters(self, figures: Mapping[str, Any], doc: str, skip: Iterable[str] = ()) -> None:
        """Every int of ``figures`` (not in ``skip``) as the counter ``<key>_total``."""
        skipped = set(skip)
        for key, value in figures.items():
            if key not in skipped and _is_number(value) and isinstance(value, int):
                self.counter(key, f"{doc}: {key.replace('_', ' ')}", value)

    def stats(self, metric: str, doc: str, figures: Mapping[str, Any]) -> None:
        """Every number of ``figures`` as the gauge ``metric{stat=KEY}``."""
        for key, value in sorted(figures.items()):
            if _is_number(value):
                self.gauge(metric, doc, value, stat=str(key))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- each daemon -------------------------------------------------------------------------------


def broker_families(out: Families, status: Mapping[str, Any]) -> None:
    """The broker's admin status (``Broker.status``)."""
    workers = status["workers"]
    live = [w for w in workers if w["alive"]]
    out.gauge("uptime_seconds", "seconds since the broker started", status["uptime_s"])
    out.gauge("workers", "workers alive", len(live))
    out.gauge("workers_draining", "workers alive and draining", sum(w["draining"] for w in live))
    out.gauge(
        "capacity_sessions",
        "sessions the live workers that are not draining can host",
        sum(w["capacity"] for w in live if not w["draining"]),
    )
    out.gauge("sessions", "sessions placed on workers", status["sessions"]["sessions"])
    out.gauge("blocks", "blocks placed on workers", status["sessions"]["blocks"])
    out.gauge(
        "requests_in_flight", "requests forwarded, not answered", status["queues"]["in_flight"]
    )
    rates = status["rates"]
    out.gauge("steps_per_second", "environment steps served, recent rate", rates["steps_per_s"])
    out.gauge("messages_per_second", "client messages, recent rate", rates["messages_per_s"])
    counters = dict(status["counters"])
    for code, count in sorted(counters.pop("errors", {}).items()):
        out.counter("error_replies_by_code", "error replies to clients by code", count, code=code)
    out.counters(counters, "broker")
    for w in workers:
        name = w["name"]
        out.gauge("worker_alive", "1 while the worker is alive", int(w["alive"]), worker=name)
        out.gauge("worker_draining", "1 while draining", int(w["draining"]), worker=name)
        out.gauge("worker_sessions", "sessions on the worker", w["sessions"], worker=name)
        out.gauge(
            "worker_capacity_sessions", "sessions the worker can host", w["capacity"], worker=name
        )
        out.gauge("worker_requests_in_flight", "requests in flight", w["in_flight"], worker=name)
        out.gauge(
            "worker_last_seen_seconds", "seconds since the worker was heard", w["last_seen_s"],
            worker=name,
        )  # fmt: skip


def worker_families(out: Families, stats: Mapping[str, Any]) -> None:
    """A worker's heartbeat stats (``Worker.stats``)."""
    out.gauge("sessions", "sessions hosted", stats["sessions"])
    out.gauge("blocks", "blocks hosted", stats["blocks"])
    out.counters(stats, "worker", skip=("sessions", "blocks"))
    out.stats("agent", "the algorithm's own figures (AgentContext.metrics)", stats.get("agent", {}))
    out.stats("parameters", "the parameter-server client's figures", stats.get("parameters", {}))


SHARD_GAUGES = ("version", "global_step", "episodes", "stopping", "staleness_mean", "score")
SHARD_GAUGES += ("staleness_max", "pending", "workers_live", "statistics_updates")


def shard_families(out: Families, stats: Mapping[str, Any]) -> None:
    """A shard's stats (``Shard.stats``)."""
    for key in SHARD_GAUGES:
        value = stats.get(key)
        if value is not None:
            out.gauge(key, f"shard: {key.replace('_', ' ')}", float(value))
    out.counters(stats, "shard", skip=(*SHARD_GAUGES, "shard"))  # its number: the name label
    for worker, count in sorted(stats.get("worker_gradients", {}).items()):
        out.counter("worker_gradients", "gradients received by worker", count, worker=worker)


def collector_families(out: Families, stats: Mapping[str, Any]) -> None:
    """The metrics collector's counters (``Collector.stats``)."""
    out.counters(stats, "collector")


def gateway_families(out: Families, status: Mapping[str, Any]) -> None:
    """The gateway's status (``Gateway.status``)."""
    counters = dict(status["counters"])
    out.gauge("uptime_seconds", "seconds since the gateway started", status["uptime_s"])
    out.gauge("connections_open", "WebSocket connections open", counters.pop("connections_open"))
    out.counter(
        "throttled_seconds", "seconds connections were held back", counters.pop("throttled_s")
    )
    out.counter("received_bytes", "bytes received from clients", counters.pop("bytes_in"))
    out.counter("sent_bytes", "bytes sent to clients", counters.pop("bytes_out"))
    for reason, count in sorted(counters.pop("refused").items()):
        out.counter("refused_handshakes", "handshakes refused by reason", count, reason=reason)
    for reason, count in sorted(counters.pop("closed").items()):
        out.counter("closed_connections", "connections closed by reason", count, reason=reason)
    out.counters(counters, "gateway")


def autoscaler_families(out: Families, state: Mapping[str, Any]) -> None:
    """The autoscaler's state (``Autoscaler.figures``)."""
    for key, value in sorted(state.items()):
        if key.endswith("_total") and _is_number(value):
            out.counter(key.removesuffix("_total"), f"autoscaler: {key}", value)
        elif _is_number(value):
            out.gauge(key, f"autoscaler: {key.replace('_', ' ')}", value)


LEARNER_GAUGES = ("version", "global_step", "uptime", "transitions_per_s", "pending", "learn_seconds")


def learner_families(out: Families, status: Mapping[str, Any]) -> None:
    """A learner daemon's status (``LearnerDaemon.stats``): its intake's staleness too."""
    for key in LEARNER_GAUGES:
        out.gauge(key, f"learner: {key.replace('_', ' ')}", float(status[key]))
    out.counters(status, "learner", skip=(*LEARNER_GAUGES, "name", "intake", "learner"))
    intake = dict(status.get("intake", {}))
    histogram = intake.pop("lag_histogram", [])
    out.gauge("lag_max", "largest version lag of an accepted unroll", intake.pop("lag_max", 0))
    out.counters(intake, "learner intake")
    for bucket, count in enumerate(histogram):
        low = 0 if bucket == 0 else 1 << (bucket - 1)
        out.counter("lag_items", "accepted items by version lag (from)", count, lag=str(low))
    out.stats("algorithm", "the algorithm's learner figures", status.get("learner", {}))


def replay_families(out: Families, status: Mapping[str, Any]) -> None:
    """A replay server's status (``ReplayServer.stats``)."""
    for key, value in sorted(status.items()):
        if _is_number(value):
            out.gauge(key, f"replay: {key.replace('_', ' ')}", value)


FAMILIES: dict[str, Callable[[Families, Mapping[str, Any]], None]] = {
    "broker": broker_families,
    "workers": worker_families,
    "shards": shard_families,
    "collector": collector_families,
    "gateway": gateway_families,
    "autoscaler": autoscaler_families,
    "learners": learner_families,
    "replay": replay_families,
}


class DaemonCollector:
    """A prometheus-client collector reading one daemon's published figures at each scrape.

    Args:
        daemon: the daemon kind (a key of ``FAMILIES``).
        name: the daemon's name (its ``name`` label).
        read: what the daemon published last; None before it has.
    """

    def __init__(
        self, daemon: str, name: str, read: Callable[[], Mapping[str, Any] | None]
    ) -> None:
        if daemon not in FAMILIES:
            raise ValueError(f"expected one of {', '.join(FAMILIES)}, got {daemon!r}")
        self.daemon, self.role, self.name, self.read = daemon, ROLE[daemon], name, read
        #: scrapes whose figures could not be read (logged the first time, then every 100th)
        self.errors = 0

    def collect(self) -> Iterator[Metric]:
        out = Families(self.role, self.name)
        out.gauge("up", "1 while the daemon serves", 1)
        try:  # a daemon's odd figure (or one changing under the read) must not fail the scrape
            figures = self.read()
            out.gauge(
                "reporting", "1 once the daemon has published its figures", figures is not None
            )
            if figures is not None:
                FAMILIES[self.daemon](out, figures)
        except Exception:
            self.errors += 1
            if self.errors % 100 == 1:
                log.exception("prometheus: reading the %s's figures failed", self.role)
            out.found.clear()  # no half-built families: up and scrape_errors only
            out.gauge("up", "1 while the daemon serves", 1)
        out.counter("scrape_errors", "scrapes whose figures could not be read", self.errors)
        yield from out.found.values()
