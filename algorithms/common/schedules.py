"""Schedules: a value (learning rate, clip range, entropy coefficient) per global step.

A config value is a number (constant) or a mapping, parsed by :func:`make_schedule`::

    lr: 3.0e-4
    lr: {kind: linear, initial: 3.0e-4, final: 0.0, steps: 1000000}
    lr: {kind: exponential, initial: 1.0e-3, rate: 0.5, steps: 100000, final: 1.0e-5}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Schedule(Protocol):
    """A value as a function of the global step (steps before 0 count as 0)."""

    def __call__(self, step: int) -> float: ...


@dataclass(frozen=True)
class Constant:
    """The same value at every step."""

    value: float

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class Linear:
    """From ``initial`` at step 0 to ``final`` at step ``steps``, then ``final``."""

    initial: float
    final: float
    steps: int

    def __call__(self, step: int) -> float:
        fraction = min(max(step, 0) / self.steps, 1.0)
        return self.initial + fraction * (self.final - self.initial)


@dataclass(frozen=True)
class Exponential:
    """``initial * rate ** (step / steps)``, never past ``final`` when one is given."""

    initial: float
    rate: float
    steps: int
    final: float | None = None

    def __call__(self, step: int) -> float:
        try:
            growth = self.rate ** (max(step, 0) / self.steps)
        except OverflowError:  # a rate above 1, many steps on: past any final value
            growth = math.inf
        value = self.initial * growth if self.initial else 0.0
        if self.final is None:
            return value
        return max(value, self.final) if self.rate <= 1.0 else min(value, self.final)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    return float(value)


def _positive_steps(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | float) or value <= 0:
        raise ValueError(f"steps: expected a positive number of steps, got {value!r}")
    if int(value) != value:
        raise ValueError(f"steps: expected a whole number of steps, got {value!r}")
    return int(value)


def constant(value: float) -> Constant:
    """A schedule that is always ``value``."""
    return Constant(_number("value", value))


def linear(initial: float, final: float, steps: int) -> Linear:
    """Linear decay (or growth) from ``initial`` to ``final`` over ``steps`` global steps."""
    return Linear(_number("initial", initial), _number("final", final), _positive_steps(steps))


def exponential(initial: float, rate: float, steps: int, final: float | None = None) -> Exponential:
    """Multiply by ``rate`` every ``steps`` global steps (continuously), bounded by ``final``."""
    if _number("rate", rate) <= 0:
        raise ValueError(f"rate: expected a positive number, got {rate!r}")
    bound = None if final is None else _number("final", final)
    return Exponential(_number("initial", initial), float(rate), _positive_steps(steps), bound)


_KINDS: dict[str, tuple[Any, frozenset[str], frozenset[str]]] = {
    # kind: (factory, required keys, optional keys)
    "constant": (constant, frozenset({"value"}), frozenset()),
    "linear": (linear, frozenset({"initial", "final", "steps"}), frozenset()),
    "exponential": (exponential, frozenset({"initial", "rate", "steps"}), frozenset({"final"})),
}


def make_schedule(spec: Any) -> Schedule:
    """A schedule from a config value: a number, a mapping with ``kind``, or a Schedule.

    Raises ValueError naming the expected kinds/keys and what came.
    """
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return constant(spec)
    if isinstance(spec, Constant | Linear | Exponential):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"schedule: expected a number or a mapping with 'kind', got {type(spec).__name__} {spec!r}"
        )
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"schedule kind: expected one of {sorted(_KINDS)}, got {kind!r}")
    factory, required, optional = _KINDS[kind]
    keys = set(spec) - {"kind"}
    unknown, missing = keys - required - optional, required - keys
    if unknown or missing:
        raise ValueError(
            f"{kind} schedule: expected keys {sorted(required)}"
            + (f" (optional {sorted(optional)})" if optional else "")
            + f", got {sorted(keys)}"
        )
    return factory(**{key: spec[key] for key in keys})
