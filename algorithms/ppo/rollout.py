"""A worker's rollout as PPO trains on it: GAE(lambda) per segment, then flat tensors.

Each ``Segment`` carries the behaviour policy's ``log_prob`` and ``value`` per step
(extras stored at collection time). The advantage recursion runs within a segment and
continues past its last step into ``V(next_state)`` (the bootstrap, computed on the
behaviour weights) unless the segment ended by termination (then 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..common.recorder import Segment
from ..common.returns import gae

#: Names of the per-step extras the agent stores with each action.
LOG_PROB = "log_prob"
VALUE = "value"


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


def bootstrap_indices(segments: list[Segment]) -> list[int]:
    """Indices of the segments whose last step is bootstrapped (not terminated)."""
    return [i for i, s in enumerate(segments) if not s.terminal and s.next_state is not None]


def segment_advantages(
    segment: Segment, bootstrap: float, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) of one segment, float32 (T,) each."""
    values = segment.extras[VALUE].astype(np.float64)
    dones = np.zeros(len(segment))
    dones[-1] = float(segment.terminal)
    advantages, returns = gae(
        segment.rewards.astype(np.float64), values, dones, bootstrap, gamma, lam
    )
    return advantages.astype(np.float32), returns.astype(np.float32)


def build_rollout(
    segments: list[Segment],
    bootstraps: dict[int, float],
    *,
    gamma: float,
    lam: float,
    device: torch.device,
) -> Rollout:
    """The rollout of ``segments`` (in collection order).

    ``bootstraps``: segment index -> ``V(next_state)`` (absent: 0).
    """
    advantages, returns = [], []
    for i, segment in enumerate(segments):
        a, r = segment_advantages(segment, bootstraps.get(i, 0.0), gamma, lam)
        advantages.append(a)
        returns.append(r)

    def stack(parts: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.concatenate(parts), device=device)

    return Rollout(
        states=stack([s.states for s in segments]),
        actions=stack([s.actions for s in segments]),
        log_probs=stack([s.extras[LOG_PROB] for s in segments]),
        values=stack([s.extras[VALUE] for s in segments]),
        advantages=stack(advantages),
        returns=stack(returns),
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
