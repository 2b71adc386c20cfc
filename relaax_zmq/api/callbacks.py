"""What ``learn`` tells callbacks, and the evaluation callback that keeps the best policy.

A callback is any callable taking a ``Progress``; it is called about every
``progress_interval`` seconds of a run and once at its end, and returning False
stops the run (after which the end call still comes, with ``final`` set).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relaax_zmq.api.evaluate import EnvSpec, Evaluation, evaluate

if TYPE_CHECKING:
    from relaax_zmq.api.policy import Policy


@dataclass
class Progress:
    """Where a ``learn`` run stands.

    ``mean_reward`` is the mean of the last ``window`` episode returns (-inf before that
    many); ``losses`` the newest learning figures by name (serial mode; the daemons'
    are in TensorBoard); ``policy()`` the current policy (serial mode: the current
    weights; with daemons: the newest complete checkpoint; None while there is none).
    """

    steps: int
    episodes: int
    seconds: float
    mean_reward: float
    best_mean_reward: float
    global_step: int
    losses: dict[str, float] = field(default_factory=dict)
    final: bool = False
    policy: Callable[[], Policy | None] = field(default=lambda: None, repr=False)


#: A callback: False stops the run.
Callback = Callable[[Progress], "bool | None"]


class EvalCallback:
    """Evaluate the current policy every ``every_steps`` environment steps and keep the best.

    Each evaluation runs ``episodes`` deterministic episodes on ``env`` (a gymnasium id or a
    factory, fresh for each evaluation); when the mean beats every earlier one the policy is
    saved to ``best_path`` (``learn`` sets it to ``<run folder>/best-policy.h5`` when None).
    ``stop_at``: stop the run once an evaluation's mean reaches it. ``history`` holds
    (steps, evaluation) pairs.
    """

    def __init__(
        self,
        env: EnvSpec,
        *,
        every_steps: int = 20_000,
        episodes: int = 10,
        best_path: str | Path | None = None,
        stop_at: float | None = None,
        seed: int | None = 12345,
    ) -> None:
        if every_steps < 1 or episodes < 1:
            raise ValueError("EvalCallback: expected every_steps >= 1 and episodes >= 1")
        self.env = env
        self.every_steps = every_steps
        self.episodes = episodes
        self.best_path = None if best_path is None else Path(best_path)
        self.stop_at = stop_at
        self.seed = seed
        self.best_mean = -math.inf
        self.best_steps: int | None = None
        self.history: list[tuple[int, Evaluation]] = []
        self._next = every_steps
        self._evaluated_step: int | None = None

    def __call__(self, progress: Progress) -> bool:
        if progress.steps < self._next and not progress.final:
            return True
        self._next = progress.steps + self.every_steps
        policy = progress.policy()
        if policy is None or policy.step == self._evaluated_step:
            return True
        self._evaluated_step = policy.step
        result = evaluate(policy, self.env, self.episodes, seed=self.seed)
        self.history.append((progress.steps, result))
        if result.mean > self.best_mean:
            self.best_mean, self.best_steps = result.mean, progress.steps
            if self.best_path is not None:
                policy.save(self.best_path)
        return self.stop_at is None or result.mean < self.stop_at
