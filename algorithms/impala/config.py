"""The hyperparameters of ``impala`` and ``appo``; the defaults suit CartPole-v1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaax_zmq.core import ConfigError, option

from ..common.config import InputConfig, OptimizerConfig, OutputConfig


@dataclass(frozen=True, kw_only=True)
class ImpalaConfig:
    """``algorithm.config`` of ``impala``: actors ship unrolls, a learner applies V-trace."""

    input: InputConfig = option(doc="observations (uint8 with 3 dimensions: images, conv torso)")
    output: OutputConfig = option(doc="actions: discrete (softmax) or continuous (Gaussian)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=3e-3, max_grad_norm=1.0, eps=1e-5),
        doc="the shards' optimizer (adam); max_grad_norm clips each learner gradient",
    )
    hidden_sizes: tuple[int, ...] = option((64, 64), doc="dense layers of each torso")
    activation: Literal["tanh", "relu"] = option("tanh", doc="activation of the dense layers")
    shared_torso: bool = option(
        False, doc="policy and value heads share one torso (always with an LSTM)"
    )
    lstm_size: int | None = option(
        None, ge=1, doc="an LSTM of this size after the torso; null: feed-forward"
    )
    init_log_std: float = option(0.0, doc="continuous actions: initial log std of the Gaussian")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    unroll_length: int = option(16, ge=1, doc="T: transitions per unroll an actor ships")
    batch_size: int = option(8, ge=1, doc="unrolls per learner step (batch_size x T transitions)")
    clip_rho: float | None = option(1.0, gt=0, doc="V-trace rho-bar (null: no clipping)")
    clip_c: float | None = option(1.0, gt=0, doc="V-trace c-bar (null: no clipping)")
    clip_pg_rho: float | None = option(1.0, gt=0, doc="policy-gradient rho clip (null: none)")
    vtrace_lambda: float = option(1.0, ge=0, le=1, doc="lambda of V-trace's traces")
    value_coef: float = option(0.5, ge=0, doc="weight of the value loss 0.5 * (v_s - V)^2")
    entropy_coef: float = option(0.01, ge=0, doc="weight of the entropy bonus")
    normalize_rewards: bool = option(
        False, doc="divide rewards by the running std of the discounted return (per actor)"
    )
    normalize_advantages: bool = option(
        False,
        doc="standardise the advantages of each batch (entropy_coef then means the same "
        "at every reward scale)",
    )
    replay_ratio: float = option(
        0.0,
        ge=0,
        doc="batches replayed from the learner's recent unrolls per fresh batch (IMPALA's "
        "experience replay; 0: none, 0.5: one every other batch)",
    )
    replay_capacity: int = option(
        0, ge=0, doc="unrolls the learner keeps to replay (a ring: the oldest is overwritten)"
    )
    wait_timeout: float = option(
        5.0, gt=0, doc="longest wait of the learner for the version holding its last push"
    )

    def validate_config(self, path: str) -> None:
        if self.replay_ratio > 0 and self.replay_capacity < self.batch_size:
            raise ConfigError(
                f"{path}.replay_capacity",
                f"expected at least batch_size ({self.batch_size}) unrolls with replay_ratio "
                f"{self.replay_ratio}, got {self.replay_capacity}",
            )


@dataclass(frozen=True, kw_only=True)
class APPOConfig(ImpalaConfig):
    """``algorithm.config`` of ``appo``: PPO's clipped surrogate on V-trace advantages."""

    clip: float = option(0.2, gt=0, doc="surrogate clip range of the probability ratio")
    epochs: int = option(1, ge=1, doc="passes over each learner batch")
    minibatches: int = option(
        1, ge=1, doc="gradient steps per pass, each on a random share of the batch's unrolls"
    )
    normalize_advantages: bool = option(True, doc="standardise the advantages of each batch")
    vtrace_lambda: float = option(0.95, ge=0, le=1, doc="lambda of V-trace's traces")

    def validate_config(self, path: str) -> None:
        super().validate_config(path)
        if self.minibatches > self.batch_size:
            raise ConfigError(
                f"{path}.minibatches",
                f"expected at most batch_size ({self.batch_size}: each minibatch takes whole "
                f"unrolls), got {self.minibatches}",
            )
