"""``serve_metrics``: a daemon's /metrics endpoint for the length of a ``with`` block, when
its ``prometheus`` port is set. The HTTP machinery and prometheus-client are imported only
then: a daemon without an endpoint starts as fast as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from relaax_zmq.config import AppConfig

if TYPE_CHECKING:
    from relaax_zmq.observability.endpoint import MetricsEndpoint


@contextmanager
def serve_metrics(
    config: AppConfig,
    daemon: str,
    name: str,
    read: Callable[[], dict[str, Any] | None],
    *,
    index: int = 0,
) -> Iterator[MetricsEndpoint | None]:
    """Serve ``daemon``'s metrics (a ``PrometheusConfig`` daemon kind) while the block runs,
    when ``prometheus.<daemon>`` sets a port; yields the endpoint, or None when it is off.
    A port that cannot be bound stops the daemon at its start (``SystemExit`` naming it).

    ``read`` returns what the daemon published last (None before it has): its admin status
    or stats, as ``families.FAMILIES[daemon]`` expects.
    """
    port = config.prometheus.port(daemon, index)
    if port is None:
        yield None
        return
    from relaax_zmq.observability.endpoint import MetricsEndpoint
    from relaax_zmq.observability.families import DaemonCollector

    host = config.prometheus.host
    endpoint = MetricsEndpoint(host, port, DaemonCollector(daemon, name, read))
    try:
        endpoint.start()
    except OSError as exc:
        raise SystemExit(
            f"prometheus.{daemon}: cannot serve /metrics at {host}:{port}: {exc}"
        ) from None
    try:
        yield endpoint
    finally:
        endpoint.close()
