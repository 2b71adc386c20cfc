"""A worker's local experience replay: uniform, or proportional prioritized (Schaul et al. 2016).

Used by the off-policy algorithms (DQN with integer actions, DDPG with continuous ones);
``LocalReplay`` feeds one from a worker's segments through an ``NStepAssembler``.

A stored transition is ``(state, action, reward, next_state, done, discount)``: ``reward``
is the (n-step) discounted reward sum, ``discount`` the factor of the bootstrap
(``gamma ** m`` for a window of ``m`` steps) and ``done`` says the window ended by
termination (nothing is bootstrapped; ``next_state`` is stored as zeros). The buffer is
a ring of ``capacity`` slots: once full, the oldest transition is overwritten.

Prioritized replay samples transition ``i`` with probability ``P(i) = p_i^alpha / sum_k
p_k^alpha`` (``p_i = |td_error_i| + eps``; a new transition gets the largest priority seen
so far) and weights it by ``w_i = (N P(i))^-beta / max_k w_k`` (the maximum over the whole
buffer). Sums and minima of ``p^alpha`` live in segment trees, so sampling and updates
cost O(log capacity) per transition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .nstep import NStepAssembler, Transition
from .recorder import Segment


@dataclass(frozen=True)
class ReplayBatch:
    """A sampled minibatch, every array (B, ...).

    ``indices``: the slots sampled (for ``update_priorities``); ``weights``: importance
    weights (ones for uniform replay).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    dones: np.ndarray
    discounts: np.ndarray
    indices: np.ndarray
    weights: np.ndarray


class SegmentTree:
    """A complete binary tree over ``capacity`` leaves; each inner node is ``op`` of its children.

    Leaves are padded to a power of two with ``neutral`` (0 for sums, inf for minima).
    """

    def __init__(
        self, capacity: int, op: Callable[[np.ndarray, np.ndarray], np.ndarray], neutral: float
    ) -> None:
        if capacity < 1:
            raise ValueError(f"segment tree capacity: expected >= 1, got {capacity}")
        self.capacity = capacity
        self.size = 1 << (capacity - 1).bit_length()
        self.op = op
        self.tree = np.full(2 * self.size, neutral, np.float64)

    @property
    def root(self) -> float:
        """``op`` over every leaf."""
        return float(self.tree[1])

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[self.size + np.asarray(indices)]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` (a repeated index takes its last value)."""
        indices = np.asarray(indices, np.int64)
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise ValueError(f"leaf indices: expected 0..{self.capacity - 1}, got {indices}")
        nodes = indices + self.size
        self.tree[nodes] = values
        while nodes[0] > 1:
            nodes = np.unique(nodes // 2)
            self.tree[nodes] = self.op(self.tree[2 * nodes], self.tree[2 * nodes + 1])


class SumTree(SegmentTree):
    """Sums of non-negative leaves, with prefix-sum search."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.add, 0.0)

    def find(self, values: np.ndarray) -> np.ndarray:
        """For each value in [0, root), the leaf ``i`` with ``sum(leaves[:i]) <= value < sum(leaves[:i+1])``."""
        values = np.array(values, np.float64)
        nodes = np.ones(values.shape, np.int64)
        while self.size > 1 and nodes[0] < self.size:
            left = 2 * nodes
            right = values >= self.tree[left]
            values = np.where(right, values - self.tree[left], values)
            nodes = np.where(right, left + 1, left)
        return nodes - self.size


class MinTree(SegmentTree):
    """Minima of the leaves (empty leaves are inf)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.minimum, np.inf)


class ReplayBuffer:
    """Uniform replay over a ring of ``capacity`` transitions (see the module docstring).

    Args:
        capacity: transitions kept.
        shape, dtype: one observation (states and next states are stored as such).
        rng: the sampling generator.
        action_shape, action_dtype: one action (default: a discrete action, int64).
    """

    def __init__(
        self,
        capacity: int,
        shape: Sequence[int],
        dtype: str | np.dtype,
        rng: np.random.Generator,
        *,
        action_shape: Sequence[int] = (),
        action_dtype: str | np.dtype = np.int64,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity: expected >= 1, got {capacity}")
        self.capacity = capacity
        self.shape = tuple(shape)
        self.rng = rng
        self.states = np.zeros((capacity, *self.shape), dtype)
        self.next_states = np.zeros((capacity, *self.shape), dtype)
        self.actions = np.zeros((capacity, *action_shape), action_dtype)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.discounts = np.zeros(capacity, np.float32)
        self.position = 0  # the slot the next transition goes to
        self.count = 0  # slots filled
        self.added = 0  # transitions added since the start

    def __len__(self) -> int:
        return self.count

    def add(
        self,
        state: np.ndarray,
        action: np.ndarray | int,
        reward: float,
        next_state: np.ndarray | None,
        discount: float,
    ) -> int:
        """Store one transition (``next_state`` None: terminal); the slot it took."""
        if np.shape(state) != self.shape:
            raise ValueError(f"replay state: expected shape {self.shape}, got {np.shape(state)}")
        if np.shape(action) != self.actions.shape[1:]:
            raise ValueError(
                f"replay action: expected shape {self.actions.shape[1:]}, got {np.shape(action)}"
            )
        slot = self.position
        self.states[slot] = state
        if next_state is None:
            self.next_states[slot] = 0
        else:
            self.next_states[slot] = next_state
        self.actions[slot] = action
        self.rewards[slot] = reward
        self.dones[slot] = float(next_state is None)
        self.discounts[slot] = discount
        self.position = (slot + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)
        self.added += 1
        return slot

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly (with replacement)."""
        self._check_sample(batch_size)
        indices = self.rng.integers(0, self.count, batch_size)
        return self._batch(indices, np.ones(batch_size, np.float32))

    def _check_sample(self, batch_size: int) -> None:
        if self.count == 0 or batch_size < 1:
            raise ValueError(
                f"replay sample: expected a non-empty buffer and batch_size >= 1, "
                f"got {self.count} transitions and batch_size {batch_size}"
            )

    def _batch(self, indices: np.ndarray, weights: np.ndarray) -> ReplayBatch:
        return ReplayBatch(
            states=self.states[indices],
            actions=self.actions[indices],
            rewards=self.rewards[indices],
            next_states=self.next_states[indices],
            dones=self.dones[indices],
            discounts=self.discounts[indices],
            indices=indices,
            weights=weights,
        )


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (see the module docstring).

    Args:
        alpha: how much the priorities count (0: uniform).
        eps: added to ``|td_error|`` so that no transition gets probability 0.
        Others: as ``ReplayBuffer``.
    """

    def __init__(
        self,
        capacity: int,
        shape: tuple[int, ...],
        dtype: str | np.dtype,
        rng: np.random.Generator,
        *,
        alpha: float,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(capacity, shape, dtype, rng)
        if alpha < 0 or eps <= 0:
            raise ValueError(f"alpha, eps: expected alpha >= 0 and eps > 0, got {alpha}, {eps}")
        self.alpha = alpha
        self.eps = eps
        self.max_priority = 1.0
        self.sums = SumTree(capacity)
        self.minima = MinTree(capacity)

    def add(
        self,
        state: np.ndarray,
        action: np.ndarray | int,
        reward: float,
        next_state: np.ndarray | None,
        discount: float,
    ) -> int:
        slot = super().add(state, action, reward, next_state, discount)
        self._set(np.array([slot]), np.array([self.max_priority]))
        return slot

    def sample(self, batch_size: int, beta: float = 1.0) -> ReplayBatch:
        """``batch_size`` transitions, one from each of ``batch_size`` equal slices of the
        priority mass (stratified), with importance weights for exponent ``beta``."""
        self._check_sample(batch_size)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected a value in [0, 1], got {beta}")
        total = self.sums.root
        points = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        indices = np.minimum(self.sums.find(points), self.count - 1)
        probabilities = self.sums[indices] / total
        weights = (self.count * probabilities) ** -beta
        max_weight = (self.count * self.minima.root / total) ** -beta
        return self._batch(indices, (weights / max_weight).astype(np.float32))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities ``|td_errors| + eps`` for the slots ``indices``."""
        priorities = np.abs(np.asarray(td_errors, np.float64)) + self.eps
        if priorities.shape != np.shape(indices) or not np.isfinite(priorities).all():
            raise ValueError(
                f"td_errors: expected finite values of shape {np.shape(indices)}, "
                f"got shape {priorities.shape}"
            )
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
        self._set(np.asarray(indices), priorities)

    def probabilities(self) -> np.ndarray:
        """(len,) the current sampling probability of every filled slot."""
        return self.sums[np.arange(self.count)] / self.sums.root

    def _set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        scaled = priorities**self.alpha
        self.sums.update(indices, scaled)
        self.minima.update(indices, scaled)


class LocalReplay:
    """A worker's segments, as (n-step) transitions, into a replay ``buffer``.

    Args:
        buffer: where the transitions go.
        n_step, gamma: the ``NStepAssembler``'s window and discount.
    """

    def __init__(self, buffer: ReplayBuffer, n_step: int, gamma: float) -> None:
        self.buffer = buffer
        self.nstep = NStepAssembler(n_step, gamma)

    def __len__(self) -> int:
        return len(self.buffer)

    def feed(self, segments: Sequence[Segment]) -> None:
        """Store the transitions whose windows these segments complete."""
        for segment in segments:
            self._store(self.nstep.add(segment))

    def flush(self, session_ids: Sequence[int]) -> None:
        """Store the open windows of sessions whose episodes stopped without an end flag."""
        for sid in session_ids:
            self._store(self.nstep.flush(sid))

    def _store(self, transitions: list[Transition]) -> None:
        for t in transitions:
            self.buffer.add(t.state, t.action, t.reward, t.next_state, t.discount)
