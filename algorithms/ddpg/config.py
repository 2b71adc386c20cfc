"""The hyperparameters of ``ddpg`` (DDPG, and TD3 with its three options on).

Defaults follow the RL-Zoo TD3 settings for Pendulum-v1 (lr 1e-3, buffer 200000, gamma
0.98, batch 256, hidden layers [400, 300], Gaussian action noise 0.1 on actions scaled to
[-1, 1], one gradient step per environment step) with fewer warm-up transitions (1000
per worker instead of 10000). Noise scales are relative to each action dimension's half
range ``(high - low) / 2``: 0.1 on Pendulum's [-2, 2] is a standard deviation of 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from relaax_zmq.core import ConfigError, option

from ..common.config import (
    InputConfig,
    OptimizerConfig,
    OutputConfig,
    checked_schedule,
)
from ..common.schedules import Schedule, make_schedule


@dataclass(frozen=True, kw_only=True)
class DDPGConfig:
    """``algorithm.config`` of ``ddpg``: deterministic actor, (twin) critic, local targets."""

    input: InputConfig = option(doc="observations (vectors: the critic takes no images)")
    output: OutputConfig = option(doc="actions: continuous only (low and high)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=1e-3, max_grad_norm=None),
        doc="the shards' optimizer; learning_rate is the critic's (and the actor's, scaled)",
    )
    actor_lr_scale: float = option(
        1.0, gt=0, doc="the actor's learning rate as a multiple of optimizer.learning_rate"
    )
    hidden_sizes: tuple[int, ...] = option(
        (400, 300), doc="hidden layers of the actor and of each critic"
    )
    activation: Literal["tanh", "relu"] = option("relu", doc="hidden activation")
    gamma: float = option(0.98, ge=0, le=1, doc="reward discount")
    tau: float = option(
        0.005, gt=0, le=1, doc="polyak step of the worker's target networks towards its weights"
    )
    buffer_size: int = option(200_000, ge=1, doc="transitions each worker's replay keeps")
    batch_size: int = option(256, ge=1, doc="transitions sampled per gradient step")
    learning_starts: int = option(
        1000, ge=1, doc="transitions a worker's replay holds before its first gradient step"
    )
    random_exploration: bool = option(
        True, doc="training sessions act uniformly at random until learning_starts is reached"
    )
    train_every: int = option(
        1, ge=1, doc="training transitions (all sessions of a worker) between trainings"
    )
    gradient_steps: int = option(1, ge=1, doc="gradient steps (one push each) per training")
    weights_timeout: float = option(
        1.0,
        ge=0,
        doc="seconds to wait after each push for the shards' next weights (0: do not wait)",
    )
    exploration_noise: Any = option(
        0.1,
        doc="Gaussian action-noise std (relative to the half range): a number or a schedule "
        "over the global step",
    )
    twin: bool = option(True, doc="TD3: two critics, bootstrap from the smaller target value")
    policy_delay: int = option(
        2, ge=1, doc="TD3: the actor (and the targets) learn on every policy_delay-th step only"
    )
    target_noise: float = option(
        0.2, ge=0, doc="TD3: target policy smoothing noise std (relative; 0: no smoothing)"
    )
    target_noise_clip: float = option(
        0.5, ge=0, doc="TD3: the smoothing noise is clipped to +-this (relative)"
    )

    def validate_config(self, path: str) -> None:
        if self.output.actions is not None:
            raise ConfigError(
                f"{path}.output",
                f"ddpg acts in continuous spaces only: expected low and high, "
                f"got {self.output.actions} discrete actions",
            )
        if not self.hidden_sizes or any(n < 1 for n in self.hidden_sizes):
            raise ConfigError(
                f"{path}.hidden_sizes", f"expected positive sizes, got {list(self.hidden_sizes)}"
            )
        if self.input.dtype == "uint8" and len(self.input.shape) == 3:
            raise ConfigError(f"{path}.input", "expected vector observations, got images")
        checked_schedule(self.exploration_noise, f"{path}.exploration_noise")

    def noise_schedule(self) -> Schedule:
        """The exploration noise std (relative) as a function of the global step."""
        return make_schedule(self.exploration_noise)
