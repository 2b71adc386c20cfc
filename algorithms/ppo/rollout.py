"""A worker's rollout as PPO trains on it: GAE(lambda) over its segments, then flat tensors.

Each ``Segment`` carries the behaviour policy's ``log_prob`` and ``value`` per step
(extras stored at collection time). The advantage recursion runs within a segment and
continues past its last step into ``V(next_state)`` (the bootstrap, computed on the
behaviour weights) unless the segment ended by termination (then 0): ``segments_gae``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..common.recorder import Segment
from ..common.segment_returns import VALUE, segments_gae

#: The per-step extra holding the behaviour policy's log-probability of each action
#: (``VALUE``: its value of each state).
LOG_PROB = "log_prob"


@dataclass(frozen=True)
class Rollout:
    """N transitions, flat: what the minibatches index. All tensors have N rows."""

    states: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return int(self.advantages.shape[0])


def build_rollout(
    segments: list[Segment],
    bootstraps: np.ndarray,
    *,
    gamma: float,
    lam: float,
    device: torch.device,
) -> Rollout:
    """The rollout of ``segments`` (in collection order); ``bootstraps`` (B,): each
    segment's ``V(next_state)``, 0 after termination (``segments_gae``)."""
    advantages, returns = segments_gae(segments, bootstraps, gamma, lam)

    def stack(parts: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.concatenate(parts), device=device)

    return Rollout(
        states=stack([s.states for s in segments]),
        actions=stack([s.actions for s in segments]),
        log_probs=stack([s.extras[LOG_PROB] for s in segments]),
        values=stack([s.extras[VALUE] for s in segments]),
        advantages=torch.as_tensor(advantages, device=device),
        returns=torch.as_tensor(returns, device=device),
    )


def minibatch_order(
    size: int, epochs: int, minibatches: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``epochs * minibatches`` index arrays: each epoch a fresh permutation, split evenly.

    Fewer rows than minibatches: rows repeat so that no minibatch is empty (every step
    of the phase must push one gradient to keep the sync rounds in step).
    """
    order = []
    for _ in range(epochs):
        permutation = rng.permutation(size)
        if size < minibatches:
            permutation = np.resize(permutation, minibatches)
        order += np.array_split(permutation, minibatches)
    return order
