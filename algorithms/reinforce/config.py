"""The hyperparameters of ``reinforce``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaax_zmq.core import option

from ..common.config import InputConfig, OptimizerConfig, OutputConfig


@dataclass(frozen=True, kw_only=True)
class ReinforceConfig:
    """``algorithm.config`` of ``reinforce``: Monte-Carlo policy gradient with a value baseline."""

    input: InputConfig = option(doc="observations")
    output: OutputConfig = option(doc="actions")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=1e-2), doc="the shards' optimizer"
    )
    hidden_sizes: tuple[int, ...] = option((64,), doc="hidden layers of the policy and baseline")
    activation: Literal["tanh", "relu"] = option("tanh", doc="hidden activation")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    batch_size: int = option(
        500, ge=1, doc="transitions of finished episodes (per worker) per gradient"
    )
    baseline: bool = option(True, doc="subtract a learned value baseline from the returns")
    value_coef: float = option(0.5, ge=0, doc="weight of the baseline's squared error")
    entropy_coef: float = option(0.0, ge=0, doc="weight of the entropy bonus")
    normalize_advantages: bool = option(True, doc="standardise the advantages of each batch")
    max_episode_length: int = option(
        10_000, ge=1, doc="longer episodes are cut and bootstrapped from the baseline"
    )
