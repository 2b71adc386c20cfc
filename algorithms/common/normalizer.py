"""Running mean/std kept as additive float64 accumulators, so workers can share them.

A worker folds batches in with ``update``; ``take_delta`` hands over what it added since
the last take as one float64 vector ``[count, sum.ravel(), sumsq.ravel()]``; a parameter
server adds the deltas of all workers and sends back the totals, which ``apply_global``
installs. Sums are of ``x - shift`` (``shift`` fixed at construction and the same in
every process): a shift near the data's mean keeps the variance exact for large offsets.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(s) for s in shape)


class RunningMeanStd:
    """Mean and variance over every sample seen by any worker, per element of ``shape``.

    Totals = the last global totals applied + the deltas taken since + the local update
    not yet taken. ``var`` is the population variance (never negative); ``std`` is
    ``sqrt(var + epsilon)``.
    """

    def __init__(
        self, shape: int | Sequence[int] = (), epsilon: float = 1e-8, shift: Any = 0.0
    ) -> None:
        self.shape = _shape(shape)
        self.epsilon = float(epsilon)
        self.shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), self.shape).copy()
        self._size = self.vector_size(self.shape)
        self._global = np.zeros(self._size)
        self._local = np.zeros(self._size)

    @staticmethod
    def vector_size(shape: int | Sequence[int]) -> int:
        """Length of the accumulator vector for ``shape``: ``1 + 2 * prod(shape)``."""
        return 1 + 2 * math.prod(_shape(shape))

    def _check_vector(self, name: str, vector: Any) -> np.ndarray:
        array = np.asarray(vector, dtype=np.float64)
        if array.shape != (self._size,):
            raise ValueError(f"{name}: expected shape ({self._size},), got {array.shape}")
        return array

    def update(self, x: Any) -> None:
        """Fold in a batch ``x`` of shape (batch, *shape)."""
        batch = np.asarray(x, dtype=np.float64)
        if batch.shape[1:] != self.shape or batch.ndim != len(self.shape) + 1:
            raise ValueError(f"x: expected shape (batch, *{self.shape}), got {batch.shape}")
        centred = (batch - self.shift).reshape(batch.shape[0], -1)
        self._local += np.concatenate(
            [[batch.shape[0]], centred.sum(axis=0), np.square(centred).sum(axis=0)]
        )

    def take_delta(self) -> np.ndarray:
        """The local accumulators since the last take (float64 vector), then reset them.

        The delta keeps counting locally (folded into the global copy) until
        ``apply_global`` installs totals that include it.
        """
        delta = self._local
        self._global = self._global + delta
        self._local = np.zeros(self._size)
        return delta

    def apply_global(self, vector: Any) -> None:
        """Install the global totals ``[count, sum, sumsq]`` (float64 vector)."""
        self._global = self._check_vector("vector", vector).copy()

    def _totals(self) -> tuple[float, np.ndarray, np.ndarray]:
        totals = self._global + self._local
        n = math.prod(self.shape)
        return (
            float(totals[0]),
            totals[1 : 1 + n].reshape(self.shape),
            totals[1 + n :].reshape(self.shape),
        )

    @property
    def count(self) -> float:
        """Number of samples in the statistics."""
        return self._totals()[0]

    @property
    def mean(self) -> np.ndarray:
        """Mean per element (``shift`` before any sample), float64 of ``shape``."""
        count, total, _ = self._totals()
        return self.shift + (total / count if count > 0 else 0.0)

    @property
    def var(self) -> np.ndarray:
        """Population variance per element, clipped at zero; zeros before any sample."""
        count, total, squares = self._totals()
        if count <= 0:
            return np.zeros(self.shape)
        centred_mean = total / count
        return np.maximum(squares / count - np.square(centred_mean), 0.0)

    @property
    def std(self) -> np.ndarray:
        """``sqrt(var + epsilon)``: positive even for constant data."""
        return np.sqrt(self.var + self.epsilon)

    def normalize(self, x: Any, clip: float | None = 10.0) -> np.ndarray:
        """``(x - mean) / std`` clipped to ``[-clip, clip]`` (no clip for None), float32.

        x: (..., *shape), e.g. one observation or a batch of them.
        """
        array = np.asarray(x, dtype=np.float64)
        if array.shape[array.ndim - len(self.shape) :] != self.shape:
            raise ValueError(f"x: expected shape (..., *{self.shape}), got {array.shape}")
        out = (array - self.mean) / self.std
        if clip is not None:
            out = np.clip(out, -clip, clip)
        return out.astype(np.float32)

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild this object (plain lists and floats)."""
        return {
            "shape": list(self.shape),
            "epsilon": self.epsilon,
            "shift": self.shift.ravel().tolist(),
            "global": self._global.tolist(),
            "local": self._local.tolist(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state`; the shape must match this object's."""
        if tuple(state["shape"]) != self.shape:
            raise ValueError(f"state shape: expected {self.shape}, got {tuple(state['shape'])}")
        self.epsilon = float(state["epsilon"])
        self.shift = np.asarray(state["shift"], dtype=np.float64).reshape(self.shape)
        self._global = self._check_vector("global", state["global"]).copy()
        self._local = self._check_vector("local", state["local"]).copy()


class RewardScaler:
    """Reward scaling by the running std of the discounted return (as in PPO's VecNormalize).

    Each session keeps ``R = gamma * R + r``; every step folds ``R`` into ``rms`` and the
    reward is divided by ``sqrt(var(R) + epsilon)`` (then clipped); ``R`` restarts at 0
    after a step that ends the episode. ``rms`` is a :class:`RunningMeanStd` of shape (),
    shareable between workers like any other.
    """

    def __init__(self, gamma: float, epsilon: float = 1e-8, clip: float | None = 10.0) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma: expected a value in [0, 1], got {gamma}")
        self.gamma = float(gamma)
        self.clip = clip
        self.rms = RunningMeanStd((), epsilon)
        self._returns: dict[Hashable, float] = {}

    def scale(self, session: Hashable, rewards: Any, dones: Any) -> np.ndarray:
        """Scale a session's consecutive rewards (T,) given episode ends ``dones`` (T,).

        Returns float32 (T,).
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        ends = np.asarray(dones, dtype=bool).reshape(-1)
        if ends.shape != rewards.shape:
            raise ValueError(f"dones: expected shape {rewards.shape}, got {ends.shape}")
        scaled = np.empty_like(rewards)
        running = self._returns.get(session, 0.0)
        for t, (reward, end) in enumerate(zip(rewards, ends, strict=True)):
            running = self.gamma * running + reward
            self.rms.update([running])
            scaled[t] = reward / float(self.rms.std)
            if end:
                running = 0.0
        self._returns[session] = running
        if self.clip is not None:
            scaled = np.clip(scaled, -self.clip, self.clip)
        return scaled.astype(np.float32)

    def scale_segment(self, session: Hashable, rewards: Any, episode_ended: bool) -> np.ndarray:
        """``scale`` for consecutive rewards of which only the last may end the episode."""
        ends = np.zeros(np.shape(rewards), bool)
        ends[-1:] = episode_ended
        return self.scale(session, rewards, ends)

    def scale_rows(self, sessions: Any, rewards: Any, dones: Any) -> np.ndarray:
        """``scale`` for one reward each of distinct sessions (the rows of one step), at once.

        The step's running returns are folded into ``rms`` together, then each reward is
        divided by the std that results. Returns float32 (B,).
        """
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        ends = np.asarray(dones, dtype=bool).reshape(-1)
        keys = list(sessions)
        if ends.shape != rewards.shape or len(keys) != rewards.shape[0]:
            raise ValueError(
                f"sessions and dones: expected {rewards.shape[0]} each, "
                f"got {len(keys)} and {ends.shape[0]}"
            )
        if not keys:
            return np.zeros(0, np.float32)
        running = np.fromiter((self._returns.get(k, 0.0) for k in keys), np.float64, len(keys))
        running = self.gamma * running + rewards
        self.rms.update(running)
        scaled = rewards / float(self.rms.std)
        self._returns.update(zip(keys, np.where(ends, 0.0, running).tolist(), strict=True))
        if self.clip is not None:
            scaled = np.clip(scaled, -self.clip, self.clip)
        return scaled.astype(np.float32)

    def reset(self, session: Hashable) -> None:
        """Forget a session's running return (e.g. when it is closed)."""
        self._returns.pop(session, None)
