"""The hyperparameters of ``da3c``; the defaults suit CartPole-v1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaax_zmq.core import option

from ..common.config import InputConfig, OptimizerConfig, OutputConfig


@dataclass(frozen=True, kw_only=True)
class DA3CConfig:
    """``algorithm.config`` of ``da3c``: n-step advantage actor-critic with asynchronous updates."""

    input: InputConfig = option(doc="observations (uint8 with 3 dimensions: images, conv torso)")
    output: OutputConfig = option(doc="actions: discrete (softmax) or continuous (Gaussian)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=3e-3, max_grad_norm=1.0),
        doc="the shards' optimizer; max_grad_norm clips each pushed gradient",
    )
    hidden_sizes: tuple[int, ...] = option(
        (64, 64), doc="dense layers of the torso (after the convolutions for images)"
    )
    activation: Literal["tanh", "relu"] = option("tanh", doc="activation of the dense layers")
    shared_torso: bool = option(
        False, doc="policy and value heads share one torso (always with an LSTM)"
    )
    lstm_size: int | None = option(
        None, ge=1, doc="an LSTM of this size after the torso; null: feed-forward"
    )
    init_log_std: float = option(0.0, doc="continuous actions: initial log std of the Gaussian")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    t_max: int = option(
        20, ge=1, doc="n of the n-step returns: a session's segment is cut after t_max steps"
    )
    gae_lambda: float | None = option(
        None,
        ge=0,
        le=1,
        doc="null: n-step returns bootstrapped at the segment's end; a number: GAE(lambda)",
    )
    batch_size: int = option(
        320, ge=1, doc="transitions (segments of all the worker's sessions) per pushed gradient"
    )
    value_coef: float = option(0.5, ge=0, doc="weight of the value loss 0.5 * (R - V)^2")
    entropy_coef: float = option(0.01, ge=0, doc="weight of the entropy bonus")
    normalize_rewards: bool = option(
        False, doc="divide rewards by the running std of the discounted return (per worker)"
    )
