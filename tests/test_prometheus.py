"""Prometheus /metrics of every daemon: the figures families (no sockets), the endpoint, and
the real daemons of an app scraped over HTTP and read back with prometheus-client's parser,
against the broker's admin status and the gateway's /status."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exchange_support import wait_until, write_app
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from relaax_zmq.cli.status import collect as status_command
from relaax_zmq.client import VectorAgentProxy
from relaax_zmq.config import load_config
from relaax_zmq.observability import DaemonCollector, MetricsEndpoint
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.identity import cluster_name
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.ports import free_port, free_port_range
from relaax_zmq.testing import LINEAR_PG_PATH

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value, read by prometheus-client."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float:
    """The one sample called ``metric`` whose labels include ``labels``."""
    found = [v for (n, ls), v in samples.items() if n == metric and set(labels.items()) <= ls]
    assert len(found) == 1, (metric, labels, sorted(n for n, _ in samples))
    return found[0]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def answer(url: str) -> tuple[int, str] | None:
    """``get(url)``, or None while nothing listens there yet."""
    try:
        return get(url)
    except urllib.error.URLError:
        return None


BROKER_STATUS: dict[str, Any] = {
    "uptime_s": 12.5,
    "workers": [
        {
            "name": "worker-0@a",
            "alive": True,
            "draining": False,
            "capacity": 64,
            "sessions": 3,
            "blocks": 1,
            "in_flight": 2,
            "last_seen_s": 0.1,
        },
        {
            "name": "worker-0@b",
            "alive": True,
            "draining": True,
            "capacity": 64,
            "sessions": 0,
            "blocks": 0,
            "in_flight": 0,
            "last_seen_s": 0.2,
        },
    ],  # fmt: skip
    "sessions": {"blocks": 1, "sessions": 3},
    "rates": {"messages_per_s": 10.0, "steps_per_s": 30.0},
    "queues": {"in_flight": 2, "dropped_replies": 0},
    "counters": {"requests": 7, "refused_inits": 4, "errors": {"BUSY": 4}},
}


def scrape(collector: DaemonCollector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return parse(generate_latest(registry).decode())


def test_broker_families_name_units_and_labels() -> None:
    samples = scrape(DaemonCollector("broker", "broker", lambda: BROKER_STATUS))
    role = {"role": "broker", "name": "broker"}
    assert value(samples, "relaax_broker_sessions", **role) == 3
    assert value(samples, "relaax_broker_capacity_sessions") == 64  # the draining one: not
    assert value(samples, "relaax_broker_workers") == 2
    assert value(samples, "relaax_broker_requests_in_flight") == 2
    assert value(samples, "relaax_broker_refused_inits_total") == 4
    assert value(samples, "relaax_broker_error_replies_by_code_total", code="BUSY") == 4
    assert value(samples, "relaax_broker_worker_sessions", worker="worker-0@a") == 3
    assert value(samples, "relaax_broker_uptime_seconds") == 12.5
    assert value(samples, "relaax_broker_scrape_errors_total") == 0
    assert (
        value(samples, "relaax_broker_up") == 1 and value(samples, "relaax_broker_reporting") == 1
    )


def test_worker_gateway_and_autoscaler_families() -> None:
    stats = {"sessions": 3, "blocks": 1, "steps": 60, "agent": {"loss": 0.5}}
    worker = scrape(DaemonCollector("workers", "worker-0@a", lambda: stats | {"parameters": {}}))
    assert value(worker, "relaax_worker_sessions", role="worker", name="worker-0@a") == 3
    assert value(worker, "relaax_worker_steps_total") == 60
    assert value(worker, "relaax_worker_agent", stat="loss") == 0.5
    counters = {"connections_open": 1, "throttled_s": 0.5, "bytes_in": 10, "bytes_out": 20}
    counters |= {"connections": 4, "refused": {"token": 2}, "closed": {"idle": 1}}
    gateway = scrape(DaemonCollector("gateway", "g", lambda: {"uptime_s": 1, "counters": counters}))
    assert value(gateway, "relaax_gateway_connections_open") == 1
    assert value(gateway, "relaax_gateway_connections_total") == 4
    assert value(gateway, "relaax_gateway_received_bytes_total") == 10
    assert value(gateway, "relaax_gateway_sent_bytes_total") == 20
    assert value(gateway, "relaax_gateway_throttled_seconds_total") == 0.5
    assert value(gateway, "relaax_gateway_refused_handshakes_total", reason="token") == 2
    assert value(gateway, "relaax_gateway_closed_connections_total", reason="idle") == 1
    figures = {"workers": 2, "capacity_sessions": 128, "added_total": 3}
    autoscaler = scrape(DaemonCollector("autoscaler", "autoscaler@a", lambda: figures))
    assert value(autoscaler, "relaax_autoscaler_workers") == 2
    assert value(autoscaler, "relaax_autoscaler_capacity_sessions") == 128
    assert value(autoscaler, "relaax_autoscaler_added_total") == 3


def test_nothing_published_yet_and_odd_figures_do_not_fail_a_scrape() -> None:
    samples = scrape(DaemonCollector("workers", "w@a", lambda: None))
    assert (
        value(samples, "relaax_worker_up") == 1 and value(samples, "relaax_worker_reporting") == 0
    )
    odd = scrape(DaemonCollector("broker", "broker", lambda: {"workers": "not a list"}))
    assert value(odd, "relaax_broker_scrape_errors_total") == 1
    assert "relaax_broker_reporting" not in {n for n, _ in odd}  # no half-built families

    def changing() -> dict[str, int]:
        raise RuntimeError("dictionary changed size during iteration")

    failed = scrape(DaemonCollector("shards", "shard-0", changing))
    assert (
        value(failed, "relaax_shard_up") == 1
        and value(failed, "relaax_shard_scrape_errors_total") == 1
    )
    with pytest.raises(ValueError, match="expected one of broker"):
        DaemonCollector("nobody", "x", lambda: None)


def test_endpoint_serves_metrics_health_and_404_on_loopback() -> None:
    endpoint = MetricsEndpoint(
        "127.0.0.1", 0, DaemonCollector("collector", "c", lambda: {"received": 5})
    )
    endpoint.start()
    try:
        base = f"http://127.0.0.1:{endpoint.port}"
        code, text = get(base + "/metrics")
        assert code == 200 and value(parse(text), "relaax_collector_received_total") == 5
        assert get(base + "/healthz") == (200, "ok\n")
        assert get(base + "/nope")[0] == 404
    finally:
        endpoint.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "/healthz", timeout=2)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalStack, Path, dict[str, int]]]:
    """Collector, shard, broker, worker and gateway of one app, each with /metrics: the broker
    and the gateway on port 0 (any free port, named in their status), the others on set ports."""
    folder = tmp_path_factory.mktemp("prometheus")
    ports = {kind: free_port() for kind in ("collector", "shards", "workers")}
    ports |= {"broker": 0, "gateway": 0}
    app, _ = write_app(
        folder,
        algorithm={
            "path": str(LINEAR_PG_PATH),
            "config": {"actions": 2, "state_size": 4, "batch_size": 8, "learning_rate": 0.01},
        },
        parameter_servers={
            "endpoints": {"gradients_port": free_port_range(1), "weights_port": free_port_range(1)},
            "heartbeat_interval": 0.2,
            "checkpoint": {"dir": str(folder / "ckpt")},
        },
        metrics={"endpoint": f"tcp://127.0.0.1:{free_port()}", "logdir": str(folder / "tb")},
        gateway={"enabled": True, "port": free_port()},
        prometheus=ports,
    )
    with LocalStack(app, collector=True) as running:
        yield running, app, ports


def test_every_daemon_is_scraped_and_agrees_with_its_status(stack) -> None:
    running, app, ports = stack
    config = running.config
    metrics = {kind: f"http://127.0.0.1:{port}/metrics" for kind, port in ports.items() if port}
    # port 0: the broker's admin status and the gateway's /status name the bound endpoint
    metrics["broker"] = app_broker_status(config)["endpoints"]["prometheus"]
    assert (
        status_command(argparse.Namespace(config=app))["broker"]["prometheus"] == metrics["broker"]
    )
    gateway_status_url = f"http://127.0.0.1:{config.gateway.port}/status"
    # the stack waits for its workers, not for the gateway
    gateway_up = wait_until(lambda: answer(gateway_status_url), 20, "the gateway's /status")
    metrics["gateway"] = json.loads(gateway_up[1])["prometheus"]
    assert metrics["broker"].startswith("http://127.0.0.1:")  # loopback by default
    proxy = VectorAgentProxy(str(config.broker.frontend), 3)
    proxy.connect()
    try:
        proxy.init()
        for _ in range(20):
            proxy.update(np.zeros(3, np.float32), np.zeros((3, 4), np.float32))
        # the broker publishes once per heartbeat interval (0.2 s), the worker at each heartbeat
        wait_until(
            lambda: value(parse(get(metrics["workers"])[1]), "relaax_worker_steps_total") >= 60,
            10,
            "the worker's heartbeat after the block's steps",
        )
        wait_until(
            lambda: value(parse(get(metrics["broker"])[1]), "relaax_broker_requests_total") >= 21,
            10,
            "the broker's figures after the block's requests",
        )
        status = app_broker_status(config)
        broker = parse(get(metrics["broker"])[1])
        worker_name = cluster_name("worker-0")
        (entry,) = status["workers"]
        assert entry["name"] == worker_name
        assert value(broker, "relaax_broker_sessions") == status["sessions"]["sessions"] == 3
        assert value(broker, "relaax_broker_workers") == 1
        assert value(broker, "relaax_broker_capacity_sessions") == entry["capacity"] == 64
        assert value(broker, "relaax_broker_worker_sessions", worker=worker_name) == 3
        assert (
            value(broker, "relaax_broker_refused_inits_total")
            == status["counters"]["refused_inits"]
        )
        assert value(broker, "relaax_broker_requests_total") >= 21
        worker = parse(get(metrics["workers"])[1])
        assert value(worker, "relaax_worker_sessions", name=worker_name, role="worker") == 3
        assert value(worker, "relaax_worker_steps_total") >= 60
        shard = parse(get(metrics["shards"])[1])
        assert value(shard, "relaax_shard_up", name="shard-0") == 1
        heard = ("relaax_shard_heartbeats_total", "relaax_shard_gradients_total")
        assert sum(value(shard, name) for name in heard) >= 1  # from the worker
        assert value(shard, "relaax_shard_global_step") >= 0
        collector = parse(get(metrics["collector"])[1])
        assert value(collector, "relaax_collector_received_total") >= 0
        gateway_status = json.loads(get(gateway_status_url)[1])
        gateway = parse(get(metrics["gateway"])[1])
        assert value(gateway, "relaax_gateway_connections_open") == 0
        assert (
            value(gateway, "relaax_gateway_connections_total")
            == gateway_status["counters"]["connections"]
        )
        counted = gateway_status["counters"]["bytes_in"]
        assert value(gateway, "relaax_gateway_received_bytes_total") == counted
        for kind, url in metrics.items():
            assert get(url.replace("/metrics", "/healthz")) == (200, "ok\n"), kind
    finally:
        proxy.disconnect()


def test_the_config_binds_loopback_by_default(tmp_path: Path) -> None:
    app, _ = write_app(tmp_path, prometheus={"broker": 9100})
    config = load_config(app)
    assert config.prometheus.host == "127.0.0.1" and config.prometheus.port("broker") == 9100
    assert config.prometheus.port("workers", 3) is None
    assert (
        load_config(write_app(tmp_path, prometheus={"workers": 9200})[0]).prometheus.port(
            "workers", 3
        )
        == 9203
    )
