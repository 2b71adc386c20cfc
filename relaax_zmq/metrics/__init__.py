"""Metrics: senders push batches of scalars and histograms to a collector that writes
TensorBoard event files (docs/metrics.md).

``MetricsSender`` (workers, parameter servers, any process), ``SessionMetricsSink`` (a worker
forwarding its clients' metrics), ``RunningMean`` and ``ScoreWindow`` (what the built-in
figures are made of), ``Collector`` (``python -m relaax_zmq.metrics``; imported on
first use, so that senders do not load tensorboard), ``names`` (the built-in metric names).
"""

from typing import Any

from relaax_zmq.metrics import names
from relaax_zmq.metrics.filters import MetricFilter
from relaax_zmq.metrics.running import RunningMean, ScoreWindow
from relaax_zmq.metrics.sender import MetricsSender
from relaax_zmq.metrics.sink import SessionMetricsSink
from relaax_zmq.metrics.wire import Batch, BatchError, Header, decode_batch, encode_batch


def __getattr__(name: str) -> Any:
    if name == "Collector":
        from relaax_zmq.metrics.collector import Collector

        return Collector
    raise AttributeError(f"module 'relaax_zmq.metrics' has no attribute {name!r}")


__all__ = [
    "Batch",
    "BatchError",
    "Collector",
    "Header",
    "MetricFilter",
    "MetricsSender",
    "RunningMean",
    "ScoreWindow",
    "SessionMetricsSink",
    "decode_batch",
    "encode_batch",
    "names",
]
