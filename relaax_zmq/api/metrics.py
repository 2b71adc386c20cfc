"""``SerialMetrics``: a serial run's figures in TensorBoard files, as the collector files them.

Serial mode has no metrics collector; this writes the same tags into ``metrics.logdir``
(``client/episode_reward`` and the other episode metrics of the block,
``worker/<name>`` for what the agent records: losses, entropy ...) at the run's
environment step, so that TensorBoard, ``relaax-zmq plot`` and ``compare`` read a serial
run like any other, and the same scalars to the trackers the app enables
(``metrics.mlflow``, ``metrics.wandb``: ``relaax_zmq.metrics.tracking``), as the collector
does. ``latest`` keeps the newest value of each agent figure for callbacks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.metrics.events import EventWriter, histogram_value, scalar_value
from relaax_zmq.metrics.tracking import open_sinks

log = logging.getLogger(__name__)


class SerialMetrics:
    """A ``MetricsRecorder`` for the agent and a metrics sink for the block (module docstring)."""

    def __init__(self, config: AppConfig) -> None:
        self.writer = EventWriter(config.metrics.logdir, flush_secs=config.metrics.flush_interval)
        self.sinks = open_sinks(config.metrics, config.metrics.logdir.name)
        self.sink_errors = 0
        self.latest: dict[str, float] = {}
        #: the run's environment steps so far (the x of every value)
        self.steps_of: Callable[[], int] = lambda: 0

    def scalar(self, name: str, value: float, step: int | None = None) -> None:
        """An agent's figure (``MetricsRecorder``)."""
        self.latest[name] = float(value)
        self._write([scalar_value(f"worker/{name}", value)], {f"worker/{name}": float(value)})

    def episode(self, scalars: Mapping[str, float], histograms: Mapping[str, np.ndarray]) -> None:
        """The block's episode metrics at an episode end (``AgentBlock``'s sink)."""
        tagged = {f"client/{name}": float(value) for name, value in scalars.items()}
        values = [scalar_value(tag, value) for tag, value in tagged.items()]
        for name, data in histograms.items():
            value = histogram_value(f"client/{name}", data)
            if value is not None:
                values.append(value)
        if values:
            self._write(values, tagged)

    def _write(self, values: list, scalars: Mapping[str, float]) -> None:
        step, now = self.steps_of(), time.time()
        self.writer.write(step, now, values)
        for sink in self.sinks:
            try:
                sink.write(step, now, scalars)
            except Exception:
                self.sink_errors += 1
                log.exception("a tracker refused scalars at step %d", step)

    def close(self) -> None:
        """Write what is queued, close the file and the trackers' runs."""
        self.writer.close()
        for sink in self.sinks:
            try:
                sink.flush()
                sink.close()
            except Exception:
                self.sink_errors += 1
                log.exception("closing a tracker failed")
