"""The hyperparameters of ``dqn``; the defaults solve CartPole-v1 with one worker in 50k steps.

They follow the RL Zoo's DQN for CartPole-v1 (lr 2.3e-3, batch 64, 1e5 buffer, 1000
learning starts, gamma 0.99, epsilon 1 -> 0.04 over 8000 steps, [256, 256], Huber loss,
gradients clipped to norm 10), adapted to one optimizer step per pushed gradient: one
gradient every 2 transitions (the zoo's 128 gradient steps per 256 transitions) and a
target refreshed every 256 global steps (the zoo's target is refreshed between its
bursts of updates). Two changes made it reliable here: 3-step returns and a learning
rate decaying linearly to 0 over the 50k steps (with a constant rate and 1-step
returns the greedy policy reached 500 for one seed and stalled near 150 for another).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from relaax_zmq.core import ConfigError, option

from ..common.config import (
    SCHEDULE_HORIZON,
    InputConfig,
    OptimizerConfig,
    OutputConfig,
    checked_schedule,
)
from ..common.schedules import Schedule


@dataclass(frozen=True, kw_only=True)
class DqnConfig:
    """``algorithm.config`` of ``dqn``: Gorila DQN (local replay, shared target, async pushes)."""

    input: InputConfig = option(doc="observations (uint8 images of 3 dimensions: conv torso)")
    output: OutputConfig = option(doc="actions: discrete only (output.actions)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(
            learning_rate={"kind": "linear", "initial": 2.3e-3, "final": 0.0, "steps": 50_000},
            max_grad_norm=10.0,
        ),
        doc="the shards' optimizer (each pushed gradient is one step); the default learning "
        "rate decays linearly to 0 at global step 50000: set your own beyond CartPole",
    )
    hidden_sizes: tuple[int, ...] = option(
        (256, 256), doc="dense layers of the Q network (after the convolutions for images)"
    )
    activation: Literal["tanh", "relu"] = option("relu", doc="hidden activation")
    dueling: bool = option(False, doc="dueling heads: Q = V + A - mean(A)")
    double: bool = option(True, doc="double DQN: the online net picks a', the target rates it")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    n_step: int = option(
        3, ge=1, doc="n-step returns: transitions span up to n steps (1: plain DQN)"
    )
    buffer_size: int = option(100_000, ge=1, doc="transitions in each worker's local replay")
    batch_size: int = option(64, ge=1, doc="transitions per gradient")
    learning_starts: int = option(
        1000, ge=0, doc="transitions in the local replay before the first gradient"
    )
    train_every: int = option(
        2, ge=1, doc="a round of gradient_steps gradients every this many transitions (per worker)"
    )
    gradient_steps: int = option(1, ge=1, doc="gradients pushed per round")
    target_update: int = option(
        256,
        ge=1,
        doc="copy the weights held into the target network every this many global steps",
    )
    epsilon: Any = option(
        factory=lambda: {"kind": "linear", "initial": 1.0, "final": 0.04, "steps": 8000},
        doc="exploration rate: a number or a schedule over the worker's training steps",
    )
    huber_delta: float = option(1.0, gt=0, doc="the Huber loss is quadratic within +-delta")
    prioritized: bool = option(False, doc="proportional prioritized replay")
    alpha: float = option(0.6, ge=0, doc="prioritized: priority exponent (0: uniform)")
    beta: Any = option(
        factory=lambda: {"kind": "linear", "initial": 0.4, "final": 1.0, "steps": 50_000},
        doc="prioritized: importance-weight exponent, a number or a schedule over the worker's training steps",
    )
    priority_eps: float = option(1e-6, gt=0, doc="prioritized: added to |TD error|")

    def validate_config(self, path: str) -> None:
        if self.output.actions is None:
            raise ConfigError(
                f"{path}.output",
                f"dqn takes discrete actions (output.actions), got continuous bounds "
                f"low={self.output.low}, high={self.output.high}",
            )
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"{path}.batch_size",
                f"expected at most buffer_size ({self.buffer_size}), got {self.batch_size}",
            )
        self.epsilon_schedule(f"{path}.epsilon")
        self.beta_schedule(f"{path}.beta")

    def epsilon_schedule(self, path: str = "epsilon") -> Schedule:
        return checked_schedule(self.epsilon, path, high=1.0, horizon=SCHEDULE_HORIZON)

    def beta_schedule(self, path: str = "beta") -> Schedule:
        return checked_schedule(self.beta, path, high=1.0, horizon=SCHEDULE_HORIZON)
