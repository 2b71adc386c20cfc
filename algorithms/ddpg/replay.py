"""A worker-local uniform replay of transitions ``(s, a, r, s', done)`` in numpy ring arrays.

``done`` is 1 after a termination only (no bootstrap); a truncated episode's last
transition keeps its final observation as ``s'`` and ``done = 0`` (bootstrap), as does
every other transition. Once full, the oldest transitions are overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..common.recorder import Segment


class Transitions(NamedTuple):
    """A batch of N transitions: states and next_states (N, *obs), actions (N, d),
    rewards and dones (N,) float32."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    dones: np.ndarray


def segment_transitions(segments: Sequence[Segment], action_size: int) -> Transitions:
    """Every transition of ``segments`` (each of length >= 1) as one batch.

    A segment's last transition goes to its ``next_state`` (zeros after a termination,
    with ``done = 1``); the others to the following state of the same segment.
    """
    states = np.concatenate([s.states for s in segments])
    next_states = np.concatenate([_next_states(s) for s in segments])
    dones = np.concatenate(
        [
            np.arange(len(s)) == len(s) - 1 if s.terminal else np.zeros(len(s), bool)
            for s in segments
        ]
    )
    actions = np.concatenate([s.actions for s in segments]).reshape(len(states), action_size)
    rewards = np.concatenate([s.rewards for s in segments])
    return Transitions(
        states,
        actions.astype(np.float32),
        rewards.astype(np.float32),
        next_states,
        dones.astype(np.float32),
    )


def _next_states(segment: Segment) -> np.ndarray:
    last = segment.next_state
    if last is None:
        last = np.zeros_like(segment.states[0])
    return np.concatenate([segment.states[1:], last[None]])


class UniformReplay:
    """Up to ``capacity`` transitions; ``sample`` draws uniformly with replacement.

    Args:
        capacity: transitions kept (the oldest are overwritten).
        observation_shape, observation_dtype: of the states kept.
        action_size: action dimensions.
    """

    def __init__(
        self,
        capacity: int,
        observation_shape: Sequence[int],
        observation_dtype: np.dtype | str,
        action_size: int,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity: expected >= 1, got {capacity}")
        shape = (capacity, *observation_shape)
        self.capacity = capacity
        self.states = np.zeros(shape, observation_dtype)
        self.next_states = np.zeros(shape, observation_dtype)
        self.actions = np.zeros((capacity, action_size), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Transitions) -> None:
        """Append a batch of transitions (shapes checked against the replay's)."""
        n = len(batch.rewards)
        if batch.states.shape[1:] != self.states.shape[1:]:
            raise ValueError(
                f"replay states: expected shape {self.states.shape[1:]}, "
                f"got {batch.states.shape[1:]}"
            )
        if batch.actions.shape != (n, self.actions.shape[1]):
            raise ValueError(
                f"replay actions: expected ({n}, {self.actions.shape[1]}), got {batch.actions.shape}"
            )
        if n > self.capacity:  # only the newest fit
            batch, n = Transitions(*(values[-self.capacity :] for values in batch)), self.capacity
        rows = (self.cursor + np.arange(n)) % self.capacity
        for name, values in zip(Transitions._fields, batch, strict=True):
            getattr(self, name)[rows] = values
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> Transitions:
        """``n`` transitions drawn uniformly (with replacement) from what is held."""
        if self.size == 0:
            raise ValueError("replay: expected transitions to sample from, got none")
        rows = rng.integers(0, self.size, n)
        return Transitions(*(getattr(self, name)[rows] for name in Transitions._fields))
