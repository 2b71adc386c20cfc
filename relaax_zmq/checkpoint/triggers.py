"""When a shard should checkpoint: every N global steps and/or every N seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class SaveTrigger:
    """``due`` says whether a checkpoint is due; ``mark_saved`` restarts both counts.

    With both ``every_steps`` and ``every_seconds`` set, whichever comes first triggers. Never
    due while ``global_step`` has not moved past the last saved (or restored) step.
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

    def due(self, global_step: int, now: float | None = None) -> bool:
        """True when ``every_steps`` steps or ``every_seconds`` seconds passed since the last save."""
        last = self.last_step
        if last is not None and global_step <= last:
            return False
        if self.every_steps is not None and global_step - (last or 0) >= self.every_steps:
            return True
        now = self.clock() if now is None else now
        return self.every_seconds is not None and now - self.last_time >= self.every_seconds

    def mark_saved(self, global_step: int, now: float | None = None) -> None:
        """Count both triggers again from ``global_step`` and ``now`` (default: the clock)."""
        self.last_step = global_step
        self.last_time = self.clock() if now is None else now
