"""Prometheus /metrics (and /healthz) for every daemon (``prometheus`` config section).

``serve_metrics(config, daemon, name, read)`` starts one daemon's endpoint when its port is
configured (``serving``); ``families`` turns what a daemon reports (its admin status, its
stats) into Prometheus metric families; ``endpoint`` is the HTTP server. docs/prometheus.md
lists every metric. ``MetricsEndpoint``, ``DaemonCollector`` and ``FAMILIES`` are imported
on first use (prometheus-client is not loaded by a daemon that serves no metrics).
"""

from __future__ import annotations

import importlib
from typing import Any

from relaax_zmq.observability.serving import serve_metrics

__all__ = ["FAMILIES", "DaemonCollector", "MetricsEndpoint", "serve_metrics"]

_LAZY = {
    "MetricsEndpoint": "relaax_zmq.observability.endpoint",
    "DaemonCollector": "relaax_zmq.observability.families",
    "FAMILIES": "relaax_zmq.observability.families",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
