"""A training run's stop rules, its best mean, its progress display and its callbacks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from relaax_zmq.api.callbacks import Callback, Progress
from relaax_zmq.api.policy import Policy
from relaax_zmq.runtime.progress import ProgressDisplay, ProgressState, mean_of_last
from relaax_zmq.runtime.watching import stop_reason


@dataclass
class Stops:
    """When a run stops, who hears of its progress, and how often."""

    total_steps: int | None
    target_reward: float | None
    window: int
    time_limit: float | None
    callbacks: list[Callback]
    display: ProgressDisplay | None
    interval: float


class Watch:
    """A run's stop rules, its best mean, its display and its callbacks."""

    def __init__(self, stops: Stops, max_global_step: int | None) -> None:
        self.stops = stops
        self.max_global_step = max_global_step
        self.best = -math.inf
        self.stopped = ""
        self.start = time.monotonic()

    def check(
        self,
        steps: int,
        returns: Sequence[float],
        global_step: int,
        *,
        losses: Mapping[str, float] | None = None,
        policy: Callable[[], Policy | None] = lambda: None,
        checkpoints: int = 0,
        final: bool = False,
        report: bool = True,
    ) -> bool:
        """Update with the run's figures; True while it goes on."""
        stops, elapsed = self.stops, time.monotonic() - self.start
        mean = mean_of_last(returns, stops.window)
        self.best = max(self.best, mean)
        if not self.stopped:
            self.stopped = self._reason(steps, mean, global_step, elapsed)
        if report or final or self.stopped:
            if stops.display is not None:
                stops.display.update(
                    ProgressState(
                        elapsed,
                        steps,
                        len(returns),
                        mean,
                        global_step,
                        checkpoints,
                        stops.total_steps,
                    )
                )
            progress = Progress(
                steps,
                len(returns),
                elapsed,
                mean,
                self.best,
                global_step,
                dict(losses or {}),
                final,
                policy,
            )
            for callback in stops.callbacks:
                if callback(progress) is False and not self.stopped:
                    self.stopped = (
                        f"stopped by {getattr(callback, '__name__', type(callback).__name__)}"
                    )
        return not self.stopped

    def _reason(self, steps: int, mean: float, global_step: int, elapsed: float) -> str:
        stops = self.stops
        state = ProgressState(elapsed, steps, 0, mean, global_step, 0)
        reason = stop_reason(
            state,
            self.max_global_step,
            target_reward=stops.target_reward,
            time_limit=stops.time_limit,
            total_steps=stops.total_steps,
        )
        return reason or ""

    def target_reached(self, returns: Sequence[float]) -> bool:
        target = self.stops.target_reward
        return target is not None and mean_of_last(returns, self.stops.window) >= target
