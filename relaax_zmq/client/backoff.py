"""Jittered exponential backoff: the delays a client waits between retries.

The nominal delay starts at ``initial`` and doubles after every retry up to
``maximum``; each actual delay is drawn uniformly from [nominal / 2, nominal],
so that clients refused together do not retry together.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """Delays ``initial, 2 * initial, ... maximum``, each jittered down to half."""

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 10.0,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"expected 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._nominal = initial

    @property
    def nominal(self) -> float:
        """The upper bound of the next delay."""
        return self._nominal

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._nominal = self.initial

    def next_delay(self) -> float:
        """The next delay, uniform in [nominal / 2, nominal]; then the nominal doubles."""
        nominal = self._nominal
        self._nominal = min(nominal * 2.0, self.maximum)
        return self._rng.uniform(nominal / 2.0, nominal)

    def wait(self, limit: float | None = None) -> float:
        """Sleep the next delay (at most ``limit`` seconds) and return the time slept."""
        delay = self.next_delay()
        if limit is not None:
            delay = max(0.0, min(delay, limit))
        self._sleep(delay)
        return delay
