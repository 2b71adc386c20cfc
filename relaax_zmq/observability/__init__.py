"""Prometheus /metrics (and /healthz) for every daemon (``prometheus`` config section).

``serve_metrics(config, daemon, name, read)`` starts one daemon's endpoint when its port is
configured; ``families`` turns what a daemon reports (its admin status, its stats) into
Prometheus metric families; ``endpoint`` is the HTTP server. docs/prometheus.md lists
every metric.
"""

from relaax_zmq.observability.endpoint import MetricsEndpoint, serve_metrics
from relaax_zmq.observability.families import FAMILIES, DaemonCollector

__all__ = ["FAMILIES", "DaemonCollector", "MetricsEndpoint", "serve_metrics"]
