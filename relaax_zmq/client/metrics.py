"""Client-side metrics: buffered, then sent as one METRICS message.

A scalar set twice before a flush keeps its last value; ``mean`` values of one
name are averaged into one scalar; histogram values given for the same name
accumulate. Nothing is sent until ``flush`` (which the proxy
also calls on ``reset`` and after an update that ends an episode), so that
recording a metric never costs a round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from relaax_zmq.errors import ProtocolError
from relaax_zmq.metrics.running import RunningMean

#: ``send(scalars, histograms)``: deliver one METRICS message.
Sender = Callable[[Mapping[str, float], Mapping[str, np.ndarray]], None]


class MetricsBuffer:
    """Scalars and histograms waiting for the next flush."""

    def __init__(self, send: Sender) -> None:
        self._send = send
        self._scalars: dict[str, float] = {}
        self._means: dict[str, RunningMean] = {}
        self._histograms: dict[str, list[np.ndarray]] = {}

    def __len__(self) -> int:
        """How many metrics (scalars, means and histograms) are waiting."""
        return len(self._scalars) + len(self._means) + len(self._histograms)

    def scalar(self, name: str, value: float) -> None:
        """Record a scalar (the last value given before a flush wins)."""
        self._scalars[_checked(name)] = float(value)

    def mean(self, name: str, value: float) -> None:
        """Record a value of a scalar sent as the mean of every value given before a flush."""
        running = self._means.get(name)
        if running is None:
            running = self._means[_checked(name)] = RunningMean()
        running.add(float(value))

    def histogram(self, name: str, values: ArrayLike) -> None:
        """Record values of a histogram (values of the same name accumulate)."""
        arr = np.asarray(values, np.float64).ravel()
        self._histograms.setdefault(_checked(name), []).append(arr)

    def flush(self) -> None:
        """Send everything waiting as one METRICS message (nothing when empty).

        The buffer is emptied first: metrics whose message fails are lost, never
        sent twice.
        """
        if self:
            self._send(*self.take())

    def take(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Everything waiting, as (scalars, histograms); the buffer is left empty."""
        scalars = self._scalars
        for name, running in self._means.items():
            mean = running.take()
            if mean is not None:
                scalars[name] = mean
        histograms = {k: np.concatenate(v) for k, v in self._histograms.items()}
        self.clear()
        return scalars, histograms

    def clear(self) -> None:
        """Drop everything waiting."""
        self._scalars = {}
        self._means = {}
        self._histograms = {}


def _checked(name: str) -> str:
    if not isinstance(name, str) or not name or "\n" in name:
        raise ProtocolError("metric name", "a non-empty name without newlines", repr(name))
    return name
