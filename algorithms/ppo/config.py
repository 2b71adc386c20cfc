"""The hyperparameters of ``ppo``; the defaults solve CartPole-v1 quickly (SB3's tuned set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from relaax_zmq.core import option

from ..common.config import (
    InputConfig,
    OptimizerConfig,
    OutputConfig,
    checked_schedule,
)
from ..common.schedules import Schedule, make_schedule

#: A clip schedule that reaches 0 is held at this value (the surrogate needs clip > 0).
MIN_CLIP = 1e-6
#: The default schedules' shape (SB3's CartPole): linear to 0 at global step 1e5 (env steps).
LINEAR_DECAY = {"kind": "linear", "final": 0.0, "steps": 100_000}


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """``algorithm.config`` of ``ppo``: clipped-surrogate PPO in synchronous rounds.

    One learning phase per worker = ``epochs * minibatches`` gradients, one per sync round.
    """

    input: InputConfig = option(doc="observations (input.normalize: running mean/std)")
    output: OutputConfig = option(doc="actions: discrete (actions) or Gaussian (low, high)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=dict(LINEAR_DECAY, initial=1e-3), eps=1e-5),
        doc="the shards' optimizer; default adam, learning_rate linear 1e-3 -> 0 over 1e5 steps",
    )
    hidden_sizes: tuple[int, ...] = option((64, 64), doc="hidden layers of each torso")
    activation: Literal["tanh", "relu"] = option("tanh", doc="hidden activation")
    shared_torso: bool = option(False, doc="policy and value heads share one torso")
    init_log_std: float = option(0.0, doc="initial log std of the Gaussian policy (continuous)")
    gamma: float = option(0.98, ge=0, le=1, doc="reward discount")
    gae_lambda: float = option(0.8, ge=0, le=1, doc="lambda of GAE(lambda) advantages")
    rollout_length: int = option(
        32, ge=1, doc="steps per session a worker collects on one weight version"
    )
    batch_size: int | None = option(
        None, ge=1, doc="transitions per learning phase; null: rollout_length x training sessions"
    )
    epochs: int = option(20, ge=1, doc="passes over the rollout per learning phase")
    minibatches: int = option(1, ge=1, doc="minibatches per epoch (each one sync round)")
    clip: Any = option(
        factory=lambda: dict(LINEAR_DECAY, initial=0.2),
        doc="surrogate clip range: a number or a schedule over the global step; "
        f"default linear 0.2 -> 0 over 1e5 steps (held at {MIN_CLIP})",
    )
    clip_value: float | None = option(
        None, gt=0, doc="PPO2 value clipping around the old values; null: none"
    )
    value_coef: float = option(0.5, ge=0, doc="weight of the value loss")
    entropy_coef: float = option(0.0, ge=0, doc="weight of the entropy bonus")
    normalize_advantages: bool = option(True, doc="standardise the advantages of each minibatch")
    normalize_rewards: bool = option(
        False, doc="divide rewards by the running std of the discounted return (per worker)"
    )
    wait_timeout: float = option(
        0.5,
        gt=0,
        doc="seconds of learning per act() call and longest single wait for the next "
        "version; the phase goes on at the next act()",
    )
    round_timeout: float = option(
        10.0,
        gt=0,
        doc="a phase whose next version has not come after this many seconds is "
        "abandoned (logged, counted) and collection starts again",
    )

    def validate_config(self, path: str) -> None:
        checked_schedule(self.clip, f"{path}.clip", strict=True)

    def clip_schedule(self) -> Schedule:
        """The clip range as a function of the global step."""
        return make_schedule(self.clip)
