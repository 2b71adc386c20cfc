"""The hyperparameters of ``trpo``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaax_zmq.core import option

from ..common.config import InputConfig, OutputConfig


@dataclass(frozen=True, kw_only=True)
class TRPOConfig:
    """``algorithm.config`` of ``trpo``; the defaults are tuned for CartPole-v1.

    There is no ``optimizer`` section: the shards apply the workers' deltas with plain
    SGD at learning rate 1.0 (see ``agent.py``).
    """

    input: InputConfig = option(doc="observations")
    output: OutputConfig = option(doc="actions")
    hidden_sizes: tuple[int, ...] = option(
        (64, 64), doc="hidden layers of the policy and of the (separate) value network"
    )
    activation: Literal["tanh", "relu"] = option("tanh", doc="hidden activation")
    rollout_length: int = option(
        1024, ge=1, doc="transitions (per worker, over its sessions) per TRPO step"
    )
    segment_length: int = option(
        64,
        ge=1,
        doc="a session's transitions are cut into pieces of at most this many (the last "
        "bootstrapped from the value); a piece left unfinished at a new version is dropped",
    )
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    gae_lambda: float = option(0.97, ge=0, le=1, doc="GAE lambda (1: Monte-Carlo advantages)")
    normalize_advantages: bool = option(True, doc="standardise the advantages of each rollout")
    max_kl: float = option(0.02, gt=0, doc="KL(old || new) limit of a policy step")
    damping: float = option(0.1, ge=0, doc="added to the Fisher matrix's diagonal (CG stability)")
    cg_iters: int = option(10, ge=1, doc="conjugate-gradient iterations for the step direction")
    max_backtracks: int = option(10, ge=1, doc="line-search halvings before giving the step up")
    accept_ratio: float = option(
        0.1, ge=0, doc="line search: least fraction of the predicted improvement to accept"
    )
    entropy_coef: float = option(0.0, ge=0, doc="weight of the entropy bonus in the surrogate")
    value_epochs: int = option(5, ge=1, doc="Adam passes over a rollout to fit the value")
    value_minibatches: int = option(8, ge=1, doc="minibatches per value epoch")
    value_lr: float = option(1e-3, gt=0, doc="learning rate of the worker's value Adam")
    sync_timeout: float = option(
        10.0, gt=0, doc="seconds to wait for the next version after a push (then carry on)"
    )
