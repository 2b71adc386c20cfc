"""``SerialMetrics``: a serial run's figures in TensorBoard files, as the collector files them.

Serial mode has no metrics collector; this writes the same tags into ``metrics.logdir``
(``client/episode_reward`` and the other episode metrics of the block,
``worker/<name>`` for what the agent records: losses, entropy ...) at the run's
environment step, so that TensorBoard, ``relaax-zmq plot`` and ``compare`` read a serial
run like any other. ``latest`` keeps the newest value of each agent figure for callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.metrics.events import EventWriter, histogram_value, scalar_value


class SerialMetrics:
    """A ``MetricsRecorder`` for the agent and a metrics sink for the block (module docstring)."""

    def __init__(self, config: AppConfig) -> None:
        self.writer = EventWriter(config.metrics.logdir, flush_secs=config.metrics.flush_interval)
        self.latest: dict[str, float] = {}
        #: the run's environment steps so far (the x of every value)
        self.steps_of: Callable[[], int] = lambda: 0

    def scalar(self, name: str, value: float, step: int | None = None) -> None:
        """An agent's figure (``MetricsRecorder``)."""
        self.latest[name] = float(value)
        self.writer.write(self.steps_of(), time.time(), [scalar_value(f"worker/{name}", value)])

    def episode(self, scalars: Mapping[str, float], histograms: Mapping[str, np.ndarray]) -> None:
        """The block's episode metrics at an episode end (``AgentBlock``'s sink)."""
        values = [scalar_value(f"client/{name}", value) for name, value in scalars.items()]
        for name, data in histograms.items():
            value = histogram_value(f"client/{name}", data)
            if value is not None:
                values.append(value)
        if values:
            self.writer.write(self.steps_of(), time.time(), values)

    def close(self) -> None:
        """Write what is queued and close the file."""
        self.writer.close()
