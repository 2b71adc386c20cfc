"""When a shard should checkpoint: every N global steps and/or every N seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

#: After a save that reached no location the next try waits this long, doubling after each
#: further failure up to ``RETRY_MAX`` (a full disk must not make a shard retry in a loop).
RETRY_FIRST = 1.0
RETRY_MAX = 60.0


class SaveTrigger:
    """``due`` says whether a checkpoint is due; ``mark_saved`` restarts both counts.

    With both ``every_steps`` and ``every_seconds`` set, whichever comes first triggers. Never
    due while ``global_step`` has not moved past the last saved (or restored) step, nor before
    the retry time ``mark_failed`` set.
    """

    def __init__(
        self,
        every_steps: int | None,
        every_seconds: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.clock = clock
        self.last_step: int | None = None
        self.last_time = clock()
        #: saves failed in a row, and when the next try may happen
        self.failures = 0
        self.retry_at = -float("inf")

    def due(self, global_step: int, now: float | None = None) -> bool:
        """True when ``every_steps`` steps or ``every_seconds`` seconds passed since the last save."""
        last = self.last_step
        if last is not None and global_step <= last:
            return False
        now = self.clock() if now is None else now
        if now < self.retry_at:
            return False
        if self.every_steps is not None and global_step - (last or 0) >= self.every_steps:
            return True
        return self.every_seconds is not None and now - self.last_time >= self.every_seconds

    def mark_saved(self, global_step: int, now: float | None = None) -> None:
        """Count both triggers again from ``global_step`` and ``now`` (default: the clock)."""
        self.last_step = global_step
        self.last_time = self.clock() if now is None else now
        self.failures = 0
        self.retry_at = -float("inf")

    def mark_failed(self, now: float | None = None) -> float:
        """A save failed: not due again for ``RETRY_FIRST`` seconds, doubled for each failure in
        a row (at most ``RETRY_MAX``); the seconds until the next try."""
        delay = min(RETRY_MAX, RETRY_FIRST * 2**self.failures)
        self.failures += 1
        self.retry_at = (self.clock() if now is None else now) + delay
        return delay
