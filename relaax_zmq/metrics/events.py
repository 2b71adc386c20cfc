"""TensorBoard event files, written with tensorboard's own ``EventFileWriter`` (no TensorFlow).

Scalars are ``simple_value`` summaries and histograms ``HistogramProto`` summaries, the
records TensorBoard's scalar and histogram dashboards read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

#: Buckets of a histogram (fewer when it has fewer values).
HISTOGRAM_BINS = 30


def scalar_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    """A scalar summary value."""
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def histogram_value(
    tag: str, values: np.ndarray, bins: int = HISTOGRAM_BINS
) -> summary_pb2.Summary.Value | None:
    """A histogram summary value of the finite ``values``; None when there are none."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    counts, edges = np.histogram(v, bins=max(1, min(bins, v.size)))
    # TensorBoard keeps right edges only: an empty first bucket carries the left edge.
    proto = summary_pb2.HistogramProto(
        min=float(v.min()),
        max=float(v.max()),
        num=float(v.size),
        sum=float(v.sum()),
        sum_squares=float(np.dot(v, v)),
        bucket_limit=edges.tolist(),
        bucket=[0.0, *counts.astype(np.float64).tolist()],
    )
    return summary_pb2.Summary.Value(tag=tag, histo=proto)


class EventWriter:
    """One event file in ``logdir`` (created with the folder); ``write`` queues, ``flush`` saves."""

    def __init__(self, logdir: Path, *, flush_secs: float = 10.0) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.logdir = logdir
        self._writer = EventFileWriter(str(logdir), max_queue_size=1024, flush_secs=flush_secs)

    def write(
        self, step: int, wall_time: float, values: Iterable[summary_pb2.Summary.Value]
    ) -> None:
        """One event holding ``values`` at ``step``."""
        summary = summary_pb2.Summary(value=list(values))
        self._writer.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))

    def flush(self) -> None:
        """Write everything queued to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._writer.close()
