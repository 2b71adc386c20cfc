"""Small accumulators behind the built-in metrics: a mean since the last take, a recent window."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping


class RunningMean:
    """Sum and count of values since the last ``take``."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def take(self) -> float | None:
        """The mean since the last take (None when nothing came), then start again."""
        if not self.count:
            return None
        mean = self.total / self.count
        self.total, self.count = 0.0, 0
        return mean


class ScoreWindow:
    """The mean of the last ``size`` values of one metric (``checkpoint.best_metric``).

    ``observe`` takes every scalar batch a client sends and keeps the values named
    ``metric``; ``mean`` is NaN until one came.
    """

    def __init__(self, metric: str, size: int = 100) -> None:
        if size < 1:
            raise ValueError(f"score window: expected a size >= 1, got {size}")
        self.metric = metric
        self.values: deque[float] = deque(maxlen=size)

    def observe(self, scalars: Mapping[str, float]) -> None:
        value = scalars.get(self.metric)
        if value is not None and math.isfinite(value):
            self.values.append(float(value))

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan
