"""Discounted returns, n-step targets, GAE and TD(lambda) over a segment of steps.

Conventions shared by every function here:

* Time axis first: ``rewards`` has shape ``(T, *batch)``; ``batch`` is ``()`` for one
  stream or e.g. ``(B,)`` for B sessions side by side. Per-step inputs have the same shape;
  per-column inputs (``bootstrap``, ``last_value``) are a scalar or of shape ``batch``.
* ``dones[t]`` (alias *terminals*) is 1 when the step from ``s_t`` ended the episode by
  **termination**: nothing is bootstrapped past it.
* ``truncations[t]`` is 1 when the episode was **cut** after step ``t`` (time limit, end of
  a session) without terminating: the value of its final observation ``s_{t+1}`` is
  bootstrapped (``final_values[t]`` / ``values_next[t]``) and nothing flows in from the
  next episode. A step flagged both ways counts as terminated.
* The end of the segment is neither: the recursion continues into ``bootstrap`` /
  ``last_value``, the value estimate of the observation after the last step.
* numpy in, numpy out; torch in, torch out (dtype and device of ``rewards``), keeping the
  autograd graph so gradients flow to every tensor input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
F = TypeVar("F", bound=Callable[..., Any])


def _numpy_compatible(fn: F) -> F:
    """Run a torch implementation on numpy inputs, converting the results back."""

    def to_torch(value: Any) -> Any:
        if isinstance(value, np.ndarray | list | tuple):
            array = np.asarray(value)
            if not np.issubdtype(array.dtype, np.floating) and array.dtype != np.bool_:
                array = array.astype(np.float64)
            return torch.from_numpy(np.ascontiguousarray(array))
        return value

    def to_numpy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().numpy()
        return tuple(to_numpy(v) for v in value)

    @functools.wraps(fn)
    def wrapper(rewards: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(rewards, torch.Tensor):
            return fn(rewards, *args, **kwargs)
        rewards = to_torch(np.asarray(rewards))
        if rewards.dtype == torch.bool:
            rewards = rewards.to(torch.float64)
        args = tuple(to_torch(a) for a in args)
        kwargs = {k: to_torch(v) for k, v in kwargs.items()}
        return to_numpy(fn(rewards, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


def _float(rewards: torch.Tensor) -> torch.Tensor:
    if rewards.dim() == 0:
        raise ValueError(f"rewards: expected shape (T, *batch), got {tuple(rewards.shape)}")
    return rewards if rewards.is_floating_point() else rewards.to(torch.get_default_dtype())


def _per_step(name: str, value: Any, rewards: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor like ``rewards``, which it must match in shape."""
    tensor = torch.as_tensor(value, device=rewards.device).to(rewards.dtype)
    if tensor.shape != rewards.shape:
        raise ValueError(
            f"{name}: expected shape {tuple(rewards.shape)} (that of rewards), got {tuple(tensor.shape)}"
        )
    return tensor


def _per_column(name: str, value: Any, rewards: torch.Tensor) -> torch.Tensor:
    """A scalar or ``batch``-shaped ``value`` broadcast to ``rewards.shape[1:]``."""
    tensor = torch.as_tensor(value, device=rewards.device).to(rewards.dtype)
    batch = rewards.shape[1:]
    if tensor.dim() != 0 and tensor.shape != batch:
        raise ValueError(
            f"{name}: expected a scalar or shape {tuple(batch)}, got {tuple(tensor.shape)}"
        )
    return tensor.expand(batch)


def _check_discount(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a value in [0, 1], got {value}")


def _backward_scan(x: torch.Tensor, coef: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
    """``y_t = x_t + coef_t * y_{t+1}`` backwards over time, with ``y_T = init``."""
    out = []
    acc = init
    for t in reversed(range(x.shape[0])):
        acc = x[t] + coef[t] * acc
        out.append(acc)
    return torch.stack(out[::-1]) if out else x.clone()


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x[t + k]`` at index ``t``; zero past the end."""
    return torch.cat([x[k:], torch.zeros_like(x[: min(k, x.shape[0])])])


@_numpy_compatible
def discounted_returns(rewards: Array, dones: Array, gamma: float, bootstrap: Any = 0.0) -> Array:
    """Discounted returns ``R_t = r_t + gamma * (1 - done_t) * R_{t+1}``, ``R_T = bootstrap``.

    rewards, dones: (T, *batch); bootstrap: scalar or (*batch,), the value of the
    observation after the last step. Returns (T, *batch).
    """
    _check_discount("gamma", gamma)
    rewards = _float(rewards)
    not_done = 1.0 - _per_step("dones", dones, rewards)
    return _backward_scan(rewards, gamma * not_done, _per_column("bootstrap", bootstrap, rewards))


@_numpy_compatible
def n_step_returns(
    rewards: Array,
    dones: Array,
    values_next: Array,
    gamma: float,
    n: int,
    truncations: Array | None = None,
) -> Array:
    """n-step targets ``G_t = sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m})``.

    The window of ``m <= n`` steps stops early at an episode end or at the end of the
    segment. ``values_next[t]`` is the value estimate of the observation *after* step t
    (for a truncated step, that of its final observation); it is bootstrapped where the
    window stops unless that step terminated. All inputs (T, *batch); returns (T, *batch).
    """
    _check_discount("gamma", gamma)
    if int(n) != n or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n}")
    rewards = _float(rewards)
    done = _per_step("dones", dones, rewards)
    values_next = _per_step("values_next", values_next, rewards)
    ended = done
    if truncations is not None:
        ended = torch.maximum(done, _per_step("truncations", truncations, rewards))
    steps = rewards.shape[0]
    t = torch.arange(steps, device=rewards.device).reshape(steps, *[1] * (rewards.dim() - 1))
    target = torch.zeros_like(rewards)
    active = torch.ones_like(rewards)
    for k in range(int(n)):
        target = target + active * gamma**k * _shift(rewards, k)
        last = (t + k >= steps - 1).to(rewards.dtype)
        stop = active if k == n - 1 else active * torch.maximum(_shift(ended, k), last)
        bootstrap = (1.0 - _shift(done, k)) * _shift(values_next, k)
        target = target + stop * gamma ** (k + 1) * bootstrap
        active = active - stop
    return target


@_numpy_compatible
def gae(
    rewards: Array,
    values: Array,
    dones: Array,
    last_value: Any,
    gamma: float,
    lam: float,
    truncations: Array | None = None,
    final_values: Array | None = None,
) -> tuple[Array, Array]:
    """Generalised advantage estimation: ``(advantages, returns)``, returns = advantages + values.

    ``delta_t = r_t + gamma * (1 - done_t) * V_next_t - V_t`` where ``V_next_t`` is
    ``values[t + 1]``, ``last_value`` at the last step, or ``final_values[t]`` where
    ``truncations[t]``; ``A_t = delta_t + gamma * lam * A_{t+1}`` within an episode (the
    sum stops at terminations and truncations). rewards, values, dones, truncations,
    final_values: (T, *batch); last_value: scalar or (*batch,). lam=0 gives the TD error,
    lam=1 the Monte-Carlo return minus the value.
    """
    _check_discount("gamma", gamma)
    _check_discount("lam", lam)
    rewards = _float(rewards)
    values = _per_step("values", values, rewards)
    not_done = 1.0 - _per_step("dones", dones, rewards)
    last = _per_column("last_value", last_value, rewards)
    next_values = torch.cat([values[1:], last.unsqueeze(0)])
    continues = not_done
    if (truncations is None) != (final_values is None):
        raise ValueError(
            "truncations and final_values: expected both or neither, got "
            f"truncations={'set' if truncations is not None else None}, "
            f"final_values={'set' if final_values is not None else None}"
        )
    if truncations is not None:
        truncated = _per_step("truncations", truncations, rewards)
        final = _per_step("final_values", final_values, rewards)
        next_values = torch.where(truncated.bool(), final, next_values)
        continues = not_done * (1.0 - truncated)
    deltas = rewards + gamma * not_done * next_values - values
    advantages = _backward_scan(deltas, gamma * lam * continues, torch.zeros_like(last))
    return advantages, advantages + values


def td_lambda(
    rewards: Array,
    values: Array,
    dones: Array,
    last_value: Any,
    gamma: float,
    lam: float,
    truncations: Array | None = None,
    final_values: Array | None = None,
) -> Array:
    """lambda-returns ``G_t = r_t + gamma (1 - done_t) [(1 - lam) V_{t+1} + lam G_{t+1}]``.

    Same arguments and conventions as :func:`gae`, of which these are the returns.
    """
    return gae(rewards, values, dones, last_value, gamma, lam, truncations, final_values)[1]


@_numpy_compatible
def gae_to_segment_ends(
    rewards: Array,
    values: Array,
    dones: Array,
    ends: Array,
    bootstraps: Any,
    gamma: float,
    lam: float,
) -> tuple[Array, Array]:
    """:func:`gae` of segments laid side by side, time first, padded to the longest.

    rewards, values, dones, ends: (T, B); column b's segment ends at the step where
    ``ends`` is 1 and continues there into ``bootstraps[b]`` (the value of the observation
    after it) unless ``dones`` says it terminated. Steps past the end (padding) do not
    flow into the segment. Returns ``(advantages, returns)``, (T, B) each.
    """
    rewards = _float(rewards)
    final = _per_column("bootstraps", bootstraps, rewards).expand(rewards.shape)
    return gae(rewards, values, dones, 0.0, gamma, lam, truncations=ends, final_values=final)
