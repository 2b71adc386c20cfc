"""Argument validation shared by both kernel backends, in plain Python.

The compiled ``relaax_zmq._kernels`` and the numpy ``relaax_zmq.kernels.reference``
check their arguments here, so they accept the same values and raise the same
errors with the same messages. This is a top-level module on purpose: importing
it must not import the ``relaax_zmq.kernels`` package, whose ``__init__`` loads
the extension (a circular import when the extension is imported first).

Every check costs a constant time per call, independent of buffer lengths.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

INF = math.inf
_FLOAT32 = np.dtype(np.float32)
_FLOAT32_ZERO = 2.0**-150  # the largest double that rounds to float32 zero (ties to even)


def label(name: str, index: int) -> str:
    """``name``, or ``name[index]`` for an element of a sequence argument."""
    return name if index < 0 else f"{name}[{index}]"


def check_array(
    a: object, name: str, index: int = -1, size: int = -1, writeable: bool = True
) -> int:
    """Validate a 1-D C-contiguous aligned float32 buffer and return its length.

    ``size`` < 0 accepts any length; ``name`` and ``index`` label errors.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{label(name, index)}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != _FLOAT32:
        raise TypeError(f"{label(name, index)}: expected float32, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{label(name, index)}: expected a 1-D array, got {a.ndim}-D")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{label(name, index)}: expected a C-contiguous array, got a strided one")
    if not flags.aligned:
        raise ValueError(f"{label(name, index)}: expected an aligned array, got an unaligned one")
    if writeable and not flags.writeable:
        raise ValueError(f"{label(name, index)}: expected a writeable array, got a read-only one")
    n = a.shape[0]
    if size >= 0 and n != size:
        raise ValueError(f"{label(name, index)}: expected {size} elements, got {n}")
    return n


def overlap_error(a_name: str, b_name: str, b_index: int = -1) -> ValueError:
    """The error for two buffers whose memory overlaps."""
    return ValueError(f"{a_name}: must not overlap {label(b_name, b_index)}")


def optimizer_buffers(
    param: object, grad: object, state_names: tuple[str, ...], states: tuple[object, ...]
) -> tuple[int, tuple[str, ...], tuple[object, ...]]:
    """Validate an optimizer's ``param`` (first, alone), for its length and the buffers to check.

    Returns the length, the names and the buffers: param, grad, then each state;
    the caller validates each buffer (grad read-only) and their disjointness.
    """
    n = check_array(param, "param")
    return n, ("param", "grad", *state_names), (param, grad, *states)


def range_text(low: float, high: float, high_open: bool) -> str:
    """How an accepted range reads in an error message."""
    if math.isinf(high):
        return "a finite number" if math.isinf(low) else f"a finite number >= {float(low)}"
    return f"a number in [{float(low)}, {float(high)}{')' if high_open else ']'}"


def real(value: object, name: str, low: float, high: float, high_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] (or [low, high) when ``high_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}") from None
    if not math.isfinite(x) or x < low or x > high or (high_open and x == high):
        raise ValueError(f"{name}: expected {range_text(low, high, high_open)}, got {value!r}")
    return x


def sequence(arrays: Any, name: str) -> tuple:
    """``arrays`` as a tuple, refusing a bare array or a non-iterable."""
    if isinstance(arrays, (np.ndarray, str, bytes)):
        raise TypeError(f"{name}: expected a sequence of arrays, got {type(arrays).__name__}")
    try:
        return tuple(arrays)
    except TypeError:
        raise TypeError(
            f"{name}: expected a sequence of arrays, got {type(arrays).__name__}"
        ) from None


def sgd_hyper(
    lr: object, momentum: object, dampening: object, weight_decay: object, nesterov: object
) -> tuple[float, float, float, float]:
    """``sgd_step``'s hyperparameters validated: (lr, momentum, dampening, weight_decay).

    Nesterov needs momentum > 0 once rounded to float32, and dampening 0, as in torch.
    """
    rate = real(lr, "lr", 0, INF)
    mu = real(momentum, "momentum", 0, INF)
    damp = real(dampening, "dampening", 0, 1)
    wd = real(weight_decay, "weight_decay", 0, INF)
    if nesterov and (mu <= _FLOAT32_ZERO or damp != 0):  # no overflow warning
        raise ValueError("nesterov: expected momentum > 0 and dampening 0, got other values")
    return rate, mu, damp, wd


def rmsprop_hyper(lr: object, decay: object, eps: object) -> tuple[float, float, float]:
    """``rmsprop_step``'s hyperparameters validated: (lr, decay, eps)."""
    return real(lr, "lr", 0, INF), real(decay, "decay", 0, 1), real(eps, "eps", 0, INF)


def adam_hyper(
    step: object,
    lr: object,
    beta1: object,
    beta2: object,
    eps: object,
    weight_decay: object,
) -> tuple[int, float, float, float, float, float]:
    """``adam_step``'s arguments validated: (step, lr, beta1, beta2, eps, weight_decay)."""
    try:
        t = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"step: expected an integer, got {type(step).__name__}") from None
    if t < 1:
        raise ValueError(f"step: expected an integer >= 1, got {t}")
    return (
        t,
        real(lr, "lr", 0, INF),
        real(beta1, "beta1", 0, 1, high_open=True),
        real(beta2, "beta2", 0, 1, high_open=True),
        real(eps, "eps", 0, INF),
        real(weight_decay, "weight_decay", 0, INF),
    )
