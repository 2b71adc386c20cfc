"""The config sections every built-in algorithm shares, and how an algorithm parses its own.

An algorithm's hyperparameters are a frozen dataclass parsed from ``algorithm.config``
by :func:`parse_config` (``relaax_zmq.core.parse_config``: unknown keys, wrong types
and out-of-range values are refused with the full dotted key). The shared sections::

    input: {shape: [4], dtype: float32, normalize: false, clip: 10.0}
    output: {actions: 2}                      # discrete: n actions
    output: {low: [-2.0], high: [2.0]}        # continuous: the bounds, one per dimension
    optimizer: {name: adam, learning_rate: 3.0e-4}
    optimizer: {name: adam, learning_rate: {kind: linear, initial: 1.0e-3, final: 0.0, steps: 100000}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from relaax_zmq.core import ConfigError, option
from relaax_zmq.core import parse_config as parse_config  # algorithms parse with it

from .schedules import Schedule, make_schedule
from .spaces import ActionSpec, ObservationSpec

T = TypeVar("T")


#: "The end of training" for the range checks of schedules.
SCHEDULE_HORIZON = 10**12


def checked_schedule(
    spec: Any,
    path: str,
    *,
    low: float = 0.0,
    high: float = math.inf,
    strict: bool = False,
    horizon: int = 0,
) -> Schedule:
    """``make_schedule(spec)`` whose values at step 0 (and ``horizon``) lie in ``[low, high]``
    (``(low, high]`` when ``strict``); ``ConfigError`` at ``path`` naming what came."""
    try:
        schedule = make_schedule(spec)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None
    for step in sorted({0, horizon}):
        value = schedule(step)
        below = value <= low if strict else value < low
        if below or value > high:
            opening = "(" if strict else "["
            raise ConfigError(
                path, f"expected values in {opening}{low}, {high}], got {value} at step {step}"
            )
    return schedule


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    """What the agent observes."""

    shape: tuple[int, ...] = option(doc="observation shape, as clients send it (no batch axis)")
    dtype: Literal["float32", "float64", "uint8"] = option(
        "float32", doc="observation dtype; uint8 with 3 dimensions is an image (conv torso)"
    )
    normalize: bool = option(False, doc="normalise by running mean/std shared through shard 0")
    clip: float = option(10.0, gt=0, doc="normalised observations are clipped to +-clip")

    def validate_config(self, path: str) -> None:
        if not self.shape or any(n < 1 for n in self.shape):
            raise ConfigError(f"{path}.shape", f"expected positive sizes, got {list(self.shape)}")
        if self.normalize and self.dtype == "uint8":
            raise ConfigError(f"{path}.normalize", "images (uint8) are scaled, not normalised")

    def spec(self) -> ObservationSpec:
        return ObservationSpec(tuple(self.shape), self.dtype)


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """What the agent does: ``actions`` (discrete) or ``low`` and ``high`` (continuous)."""

    actions: int | None = option(None, ge=2, doc="number of discrete actions")
    low: tuple[float, ...] | None = option(None, doc="lower bound of each action dimension")
    high: tuple[float, ...] | None = option(None, doc="upper bound of each action dimension")

    def validate_config(self, path: str) -> None:
        continuous = self.low is not None or self.high is not None
        if (self.actions is None) == (not continuous):
            raise ConfigError(path, "expected either actions (discrete) or low and high")
        if continuous:
            if self.low is None or self.high is None or len(self.low) != len(self.high):
                raise ConfigError(path, "expected low and high of the same length")
            if not self.low or any(lo >= hi for lo, hi in zip(self.low, self.high, strict=True)):
                raise ConfigError(path, f"expected low < high, got {self.low} and {self.high}")

    def spec(self) -> ActionSpec:
        if self.actions is not None:
            return ActionSpec.discrete(self.actions)
        assert self.low is not None and self.high is not None
        return ActionSpec.continuous(self.low, self.high)


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """The optimizer the shards run (``relaax_zmq.core.OptimizerSpec``)."""

    name: Literal["adam", "rmsprop", "sgd"] = option("adam", doc="adam, rmsprop or sgd")
    learning_rate: Any = option(3e-4, doc="a number, or a schedule over the global step")
    eps: float | None = option(None, gt=0, doc="adam/rmsprop epsilon; null: the kernel's")
    momentum: float = option(0.0, ge=0, lt=1, doc="sgd momentum")
    decay: float = option(0.99, gt=0, lt=1, doc="rmsprop decay")
    max_grad_norm: float | None = option(
        0.5, gt=0, doc="workers clip each gradient to this global norm; null: no clipping"
    )

    def validate_config(self, path: str) -> None:
        checked_schedule(self.learning_rate, f"{path}.learning_rate", strict=True)

    def schedule(self) -> Schedule:
        return make_schedule(self.learning_rate)

    def hyperparameters(self) -> dict[str, float]:
        """Keyword arguments of the shard kernel (``lr`` is the schedule's first value)."""
        found: dict[str, float] = {"lr": float(self.schedule()(0))}
        if self.eps is not None:
            found["eps"] = self.eps
        if self.name == "sgd" and self.momentum:
            found["momentum"] = self.momentum
        if self.name == "rmsprop":
            found["decay"] = self.decay
        return found


#: The optimizer of algorithms that push parameter deltas (``old - new``) instead of
#: gradients (TRPO, CEM): the shards' plain SGD step at lr 1 lands exactly on ``new``.
DELTA_OPTIMIZER = OptimizerConfig(name="sgd", learning_rate=1.0, max_grad_norm=None)
