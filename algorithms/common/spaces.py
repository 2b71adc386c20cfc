"""What an algorithm knows of its environment: observation and action descriptions.

The algorithms see only the arrays that travel over RLX, so these mirror the
conversions of ``relaax_zmq.envs.spaces``: a ``Box`` observation keeps its shape
and dtype (a uint8 array of 3 dimensions is an image), a ``Discrete`` one is a
one-hot float32 vector, ``MultiBinary``/``MultiDiscrete`` a float32 array,
anything else a flat float32 vector. A ``Discrete`` action is an index (the
network outputs one logit or Q-value per action), a ``Box`` action a float
vector (the network outputs one value per dimension, within ``low``/``high``).

An algorithm's config names the sizes (``ObservationSpec((4,))``,
``ActionSpec.discrete(2)``); ``from_gymnasium`` builds them from a space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        result = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a sequence of ints, got {values!r}") from None
    if not result or any(v < 1 for v in result) or result != tuple(values):
        raise ValueError(f"{name}: expected a non-empty sequence of ints >= 1, got {values!r}")
    return result


@dataclass(frozen=True)
class ObservationSpec:
    """One observation: shape (without the batch dimension) and dtype.

    Attributes:
        shape: e.g. ``(4,)`` for a vector, ``(84, 84, 4)`` or ``(4, 84, 84)`` for images.
        dtype: numpy dtype name of the arrays clients send (``float32``, ``uint8`` ...).
    """

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _positive_ints("observation shape", self.shape))
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise ValueError(
                f"observation dtype: expected a numpy dtype, got {self.dtype!r}"
            ) from None
        if dtype.kind not in "buif":
            raise ValueError(f"observation dtype: expected a bool or numeric dtype, got {dtype}")
        object.__setattr__(self, "dtype", dtype.name)

    @property
    def size(self) -> int:
        """Values in one observation (the input size of an MLP over the flattened array)."""
        return math.prod(self.shape)

    @property
    def is_image(self) -> bool:
        """A uint8 array of 3 dimensions, (C, H, W) or (H, W, C): a convolutional torso."""
        return self.dtype == "uint8" and len(self.shape) == 3

    def check(self, states: np.ndarray) -> None:
        """Raise ValueError unless ``states`` is (B, *shape) of this dtype."""
        if states.shape[1:] != self.shape or states.dtype != np.dtype(self.dtype):
            raise ValueError(
                f"observations: expected (B, {', '.join(map(str, self.shape))}) {self.dtype}, "
                f"got {tuple(states.shape)} {states.dtype}"
            )

    @classmethod
    def from_gymnasium(cls, space: Any) -> ObservationSpec:
        """The observations a client of ``space`` sends (``relaax_zmq.envs.spaces``)."""
        from gymnasium import spaces

        if isinstance(space, spaces.Box):
            return cls(tuple(space.shape), np.dtype(space.dtype).name)
        if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
            return cls(tuple(space.shape), "float32")
        if isinstance(space, spaces.Discrete):
            return cls((int(space.n),), "float32")
        return cls((int(spaces.flatdim(space)),), "float32")


@dataclass(frozen=True)
class ActionSpec:
    """The actions: ``n`` discrete ones, or a float vector within ``low``/``high``.

    Build with ``ActionSpec.discrete(n)`` or ``ActionSpec.continuous(low, high)``.

    Attributes:
        n: number of discrete actions; None for continuous actions.
        low: lower bound per dimension (continuous only, finite).
        high: upper bound per dimension (continuous only, finite, > low).
    """

    n: int | None = None
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.n is not None:
            if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
                raise ValueError(f"actions: expected an int >= 1, got {self.n!r}")
            if self.low is not None or self.high is not None:
                raise ValueError("actions: discrete actions take no low/high bounds")
            return
        if self.low is None or self.high is None:
            raise ValueError("actions: expected n (discrete) or low and high (continuous)")
        low = tuple(float(v) for v in np.asarray(self.low, np.float64).reshape(-1))
        high = tuple(float(v) for v in np.asarray(self.high, np.float64).reshape(-1))
        if not low or len(low) != len(high):
            raise ValueError(
                f"action bounds: expected low and high of one non-zero length, "
                f"got {len(low)} and {len(high)}"
            )
        lo, hi = np.array(low), np.array(high)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
            raise ValueError(f"action bounds: expected finite low < high, got {low} and {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def discrete(cls, n: int) -> ActionSpec:
        """``n`` actions, indices 0..n-1."""
        return cls(n=n)

    @classmethod
    def continuous(
        cls, low: float | Sequence[float], high: float | Sequence[float], dim: int | None = None
    ) -> ActionSpec:
        """A float vector within ``[low, high]``; scalar bounds are repeated ``dim`` times."""
        lo, hi = np.asarray(low, np.float64).reshape(-1), np.asarray(high, np.float64).reshape(-1)
        if dim is not None:
            if lo.size not in (1, dim) or hi.size not in (1, dim):
                raise ValueError(
                    f"action bounds: expected 1 or {dim} values, got {lo.size} and {hi.size}"
                )
            lo, hi = np.broadcast_to(lo, (dim,)), np.broadcast_to(hi, (dim,))
        return cls(low=tuple(lo.tolist()), high=tuple(hi.tolist()))

    @property
    def is_discrete(self) -> bool:
        return self.n is not None

    @property
    def size(self) -> int:
        """Outputs of a policy head: logits for discrete actions, dimensions otherwise."""
        return self.n if self.n is not None else len(self.low or ())

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one action as an agent returns it: ``()`` (an index) or ``(size,)``."""
        return () if self.is_discrete else (self.size,)

    @classmethod
    def from_gymnasium(cls, space: Any) -> ActionSpec:
        """Actions of a ``Discrete`` or ``Box`` space (a Box is flattened)."""
        from gymnasium import spaces

        if isinstance(space, spaces.Discrete):
            return cls.discrete(int(space.n))
        if isinstance(space, spaces.Box):
            return cls.continuous(space.low.reshape(-1), space.high.reshape(-1))
        raise TypeError(f"unsupported action space {space!r}: expected Discrete or Box")
