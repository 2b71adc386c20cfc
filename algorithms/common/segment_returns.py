"""GAE(lambda) over a whole batch of recorded segments at once (PPO's and TRPO's rollouts).

The segments are laid side by side, time first, padded to the longest: one backward
scan of as many steps as the longest segment covers them all. Each segment's recursion
stops at its last step and continues into its bootstrap there: ``V(next_state)`` when
the segment was cut or truncated, 0 when the episode terminated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .recorder import Segment
from .returns import gae_to_segment_ends

#: The per-step extra holding the value the behaviour weights gave each state.
VALUE = "value"


def bootstrap_rows(segments: Sequence[Segment]) -> list[int]:
    """Indices of the segments whose last step is bootstrapped (not terminated)."""
    return [i for i, s in enumerate(segments) if not s.terminal and s.next_state is not None]


def bootstrap_values(
    model: torch.nn.Module, segments: Sequence[Segment], device: torch.device
) -> np.ndarray:
    """(B,) float64: ``V(next_state)`` per segment on ``model``'s weights (an actor-critic
    whose output has ``value``), 0 where the episode terminated."""
    found = np.zeros(len(segments))
    rows = bootstrap_rows(segments)
    if rows:
        states = np.stack([segments[i].next_state for i in rows])
        with torch.no_grad():
            values = model(torch.as_tensor(states, device=device)).value
        found[rows] = values.cpu().numpy()
    return found


def segments_gae(
    segments: Sequence[Segment], bootstraps: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) of every step of ``segments``, float32 (N,) each, flat in the
    segments' order, from the values stored with the actions (extra ``VALUE``) and
    ``bootstraps`` (B,) (see the module docstring)."""
    if len(bootstraps) != len(segments):
        raise ValueError(f"bootstraps: expected {len(segments)} values, got {len(bootstraps)}")
    lengths = np.array([len(s) for s in segments])
    steps = int(lengths.max())
    mask = np.arange(steps)[:, None] < lengths[None, :]  # (T, B)
    ends = np.arange(steps)[:, None] == (lengths - 1)[None, :]
    terminal = np.array([s.terminal for s in segments])
    rewards, values = np.zeros((2, steps, len(segments)))
    rewards.T[mask.T] = np.concatenate([s.rewards for s in segments])
    values.T[mask.T] = np.concatenate([s.extras[VALUE] for s in segments])
    advantages, returns = gae_to_segment_ends(
        rewards, values, ends & terminal[None, :], ends, bootstraps, gamma, lam
    )
    return (
        advantages.T[mask.T].astype(np.float32),
        returns.T[mask.T].astype(np.float32),
    )
