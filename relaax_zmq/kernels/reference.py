"""Parameter-server numeric kernels in plain numpy: the ground truth.

Same API, same validation and same error messages as the compiled
``relaax_zmq._kernels``; used when the extension cannot load and by the tests
as the slow reference. Element-wise arithmetic is float32 in the order torch
uses; reductions accumulate in float64.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from relaax_zmq.kernels import checks as checks

_CHUNK = 65536  # elements converted to float64 at a time by global_norm
_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet(fn: _F) -> _F:
    """``fn`` without numpy's overflow and invalid-value warnings: the compiled kernels emit none."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _disjoint(a: object, a_name: str, b: object, b_name: str, b_index: int = -1) -> None:
    """Refuse two buffers whose memory overlaps."""
    if np.may_share_memory(a, b):
        raise checks.overlap_error(a_name, b_name, b_index)


def _check_optimizer(
    param: object, grad: object, state_names: tuple[str, ...], states: tuple[object, ...]
) -> None:
    """Validate ``param``, ``grad`` and the named state buffers, all of one length, disjoint."""
    n, names, arrays = checks.optimizer_buffers(param, grad, state_names, states)
    for i, a in enumerate(arrays):
        checks.check_array(a, names[i], -1, n, writeable=i != 1)
        for j in range(i):
            _disjoint(a, names[i], arrays[j], names[j])


def _aggregate(out: np.ndarray, grads: Sequence[np.ndarray], mean: bool) -> None:
    n = checks.check_array(out, "out")
    arrays = checks.sequence(grads, "grads")
    if mean and not arrays:
        raise ValueError("grads: expected at least one array, got none")
    for k, g in enumerate(arrays):
        checks.check_array(g, "grads", k, n, writeable=False)
        _disjoint(out, "out", g, "grads", k)
    if not arrays:
        out.fill(0)
        return
    np.copyto(out, arrays[0])
    for g in arrays[1:]:
        np.add(out, g, out=out)
    if mean and len(arrays) > 1:
        np.divide(out, np.float32(len(arrays)), out=out)


@_quiet
def sum_into(out: np.ndarray, grads: Sequence[np.ndarray]) -> None:
    """Write the element-wise sum of ``grads`` into ``out`` (zeros when empty).

    Args:
        out: 1-D C-contiguous float32 array, overwritten; must not overlap a gradient.
        grads: sequence of 1-D C-contiguous float32 arrays of the length of ``out``.
    """
    _aggregate(out, grads, mean=False)


@_quiet
def mean_into(out: np.ndarray, grads: Sequence[np.ndarray]) -> None:
    """Write the element-wise mean of ``grads`` into ``out``.

    Args:
        out: 1-D C-contiguous float32 array, overwritten; must not overlap a gradient.
        grads: non-empty sequence of 1-D C-contiguous float32 arrays of the length of ``out``.
    """
    _aggregate(out, grads, mean=True)


@_quiet
def scaled_add(out: np.ndarray, x: np.ndarray, alpha: float) -> None:
    """``out += alpha * x`` in float32.

    Args:
        out: 1-D C-contiguous float32 array, updated in place.
        x: 1-D C-contiguous float32 array of the same length, not overlapping ``out``.
        alpha: finite real scale.
    """
    n = checks.check_array(out, "out")
    checks.check_array(x, "x", -1, n, writeable=False)
    a = np.float32(checks.real(alpha, "alpha", -checks.INF, checks.INF))
    _disjoint(out, "out", x, "x")
    out += a * x


def _sum_squares(x: np.ndarray) -> float:
    total = 0.0
    for start in range(0, x.shape[0], _CHUNK):
        chunk = x[start : start + _CHUNK].astype(np.float64)
        total += float(np.dot(chunk, chunk))
    return total


def _norm(buffers: Sequence[np.ndarray], writeable: bool) -> tuple[tuple, float]:
    arrays = checks.sequence(buffers, "buffers")
    for k, b in enumerate(arrays):
        checks.check_array(b, "buffers", k, writeable=writeable)
    return arrays, math.sqrt(sum(_sum_squares(b) for b in arrays))


@_quiet
def global_norm(buffers: Sequence[np.ndarray]) -> float:
    """Square root of the sum of squares over all ``buffers``, accumulated in float64.

    Args:
        buffers: sequence of 1-D C-contiguous float32 arrays of any lengths.

    Returns:
        The norm as a Python float (0.0 for no buffers; inf or nan when an element is).
    """
    return _norm(buffers, writeable=False)[1]


@_quiet
def clip_by_global_norm(buffers: Sequence[np.ndarray], max_norm: float) -> float:
    """Scale ``buffers`` in place by ``max_norm / norm`` when their global norm exceeds it.

    A non-finite norm leaves the buffers untouched (the caller decides to skip the update).

    Args:
        buffers: sequence of writeable, non-overlapping 1-D C-contiguous float32 arrays.
        max_norm: finite number >= 0.

    Returns:
        The global norm before clipping.
    """
    limit = checks.real(max_norm, "max_norm", 0, checks.INF)
    arrays, norm = _norm(buffers, writeable=True)
    if math.isfinite(norm) and norm > limit:
        scale = np.float32(limit / norm)
        for b in arrays:
            b *= scale
    return norm


@_quiet
def sgd_step(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buf: np.ndarray | None,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    first_step: bool = False,
) -> None:
    """One ``torch.optim.SGD`` step (maximize=False) on flat buffers, in place.

    Args:
        param: writeable 1-D C-contiguous float32 parameters.
        grad: float32 gradient of the same length.
        momentum_buf: float32 momentum buffer of the same length, updated in place;
            may be None when ``momentum`` is 0.
        lr, momentum, dampening, weight_decay: finite numbers >= 0 (dampening <= 1).
        nesterov: Nesterov momentum; needs momentum > 0 and dampening 0, as in torch.
        first_step: the buffer is set to the gradient, as torch does on its first step.
    """
    rate, momentum, damp, weight_decay = checks.sgd_hyper(
        lr, momentum, dampening, weight_decay, nesterov
    )
    neg_lr = np.float32(-rate)
    mu = np.float32(momentum)
    wd = np.float32(weight_decay)
    states = () if mu == 0 and momentum_buf is None else (momentum_buf,)
    _check_optimizer(param, grad, ("momentum_buf",), states)
    g = grad + wd * param if wd != 0 else grad
    if mu != 0 and momentum_buf is not None:  # validated: not None when mu != 0
        if first_step:
            np.copyto(momentum_buf, g)
        else:
            momentum_buf *= mu
            momentum_buf += np.float32(1 - damp) * g
        g = g + mu * momentum_buf if nesterov else momentum_buf
    param += neg_lr * g


@_quiet
def rmsprop_step(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    lr: float,
    decay: float = 0.99,
    eps: float = 1e-8,
    eps_inside_sqrt: bool = True,
) -> None:
    """One RMSProp step on flat buffers, in place.

    ``square_avg = decay * square_avg + (1 - decay) * grad**2``, then
    ``param -= lr * grad / sqrt(square_avg + eps)`` when ``eps_inside_sqrt`` (the
    A3C / TensorFlow variant), else ``lr * grad / (sqrt(square_avg) + eps)``, which is
    ``torch.optim.RMSprop(alpha=decay, eps=eps)`` without centering or momentum.

    Args:
        param: writeable 1-D C-contiguous float32 parameters.
        grad: float32 gradient of the same length.
        square_avg: float32 running mean of squared gradients, updated in place.
        lr, eps: finite numbers >= 0; decay: in [0, 1].
    """
    rate, rho, eps = checks.rmsprop_hyper(lr, decay, eps)
    neg_lr = np.float32(-rate)
    e = np.float32(eps)
    _check_optimizer(param, grad, ("square_avg",), (square_avg,))
    square_avg *= np.float32(rho)
    square_avg += np.float32(1 - rho) * grad * grad
    denom = np.sqrt(square_avg + e) if eps_inside_sqrt else np.sqrt(square_avg) + e
    param += neg_lr * grad / denom


def _lerp_(start: np.ndarray, end: np.ndarray, weight: np.float32) -> None:
    """``start`` moved towards ``end`` by ``weight`` in place, with torch.lerp's formula."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        np.copyto(start, end - (end - start) * (np.float32(1) - weight))


@_quiet
def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    step: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    """One ``torch.optim.Adam`` step (amsgrad=False, maximize=False) on flat buffers.

    Args:
        param: writeable 1-D C-contiguous float32 parameters.
        grad: float32 gradient of the same length.
        exp_avg, exp_avg_sq: float32 first and second moment estimates, updated in place.
        step: 1-based number of this step (bias corrections ``1 - beta**step``).
        lr, eps, weight_decay: finite numbers >= 0 (L2 weight decay, not AdamW).
        beta1, beta2: in [0, 1).
    """
    t, rate, b1, b2, eps, weight_decay = checks.adam_hyper(
        step, lr, beta1, beta2, eps, weight_decay
    )
    e = np.float32(eps)
    wd = np.float32(weight_decay)
    _check_optimizer(param, grad, ("exp_avg", "exp_avg_sq"), (exp_avg, exp_avg_sq))
    g = grad + wd * param if wd != 0 else grad
    _lerp_(exp_avg, g, np.float32(1 - b1))
    exp_avg_sq *= np.float32(b2)
    exp_avg_sq += np.float32(1 - b2) * g * g
    denom = np.sqrt(exp_avg_sq) / np.float32((1 - b2**t) ** 0.5) + e
    param += np.float32(-(rate / (1 - b1**t))) * exp_avg / denom
