"""TRPO pieces: conjugate gradient, Fisher-vector products, backtracking line search, the step.

The step works on one flat parameter vector ``x`` (the form the parameter servers hold):
``loss_fn(x)`` is the surrogate loss to *minimise* (e.g. ``-mean(ratio * advantage)``) and
``kl_fn(x)`` the mean KL(old policy || policy at x), both scalars built with torch ops so
that they can be differentiated twice (``torch.func.functional_call`` turns a module into
such a function of a flat vector).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

Vector = torch.Tensor
ScalarFn = Callable[[Vector], torch.Tensor]


class TRPOResult(NamedTuple):
    """Outcome of :func:`trpo_step`: new parameters (the old ones when not ``success``)."""

    params: Vector
    success: bool
    loss_before: float
    loss_after: float
    kl: float
    expected_improve: float


def _flat(tensors: Sequence[torch.Tensor]) -> Vector:
    return torch.cat([t.reshape(-1) for t in tensors])


def _check_vector(name: str, vector: torch.Tensor, size: int | None = None) -> None:
    if vector.dim() != 1 or (size is not None and vector.numel() != size):
        expected = "a 1-D vector" if size is None else f"shape ({size},)"
        raise ValueError(f"{name}: expected {expected}, got shape {tuple(vector.shape)}")


def conjugate_gradient(
    fvp: Callable[[Vector], Vector], b: Vector, iters: int = 10, residual_tol: float = 1e-10
) -> Vector:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given ``v -> A v``.

    b: (n,). Stops after ``iters`` iterations or when the squared residual drops below
    ``residual_tol``. Returns x: (n,).
    """
    _check_vector("b", b)
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    rr = residual.dot(residual)
    for _ in range(iters):
        if rr <= residual_tol:
            break
        a_direction = fvp(direction)
        alpha = rr / direction.dot(a_direction)
        x = x + alpha * direction
        residual = residual - alpha * a_direction
        new_rr = residual.dot(residual)
        direction = residual + (new_rr / rr) * direction
        rr = new_rr
    return x


def fisher_vector_product(
    kl: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.1
) -> Callable[[Vector], Vector]:
    """``v -> (H + damping I) v`` where H is the Hessian of the scalar ``kl`` in ``params``.

    At the old parameters this Hessian is the Fisher information matrix. ``kl`` must have
    been computed from ``params`` (tensors requiring grad); ``v`` is flat over them in
    order. The first derivative is built once (double backprop) and reused for every v.
    """
    if damping < 0:
        raise ValueError(f"damping: expected a non-negative value, got {damping}")
    params = list(params)
    size = sum(p.numel() for p in params)
    grads = _flat(torch.autograd.grad(kl, params, create_graph=True))

    def product(v: Vector) -> Vector:
        _check_vector("v", v, size)
        hv = torch.autograd.grad(grads.dot(v.detach()), params, retain_graph=True)
        return _flat(hv).detach() + damping * v

    return product


def backtracking_line_search(
    f: ScalarFn,
    x: Vector,
    fullstep: Vector,
    expected_improve_rate: float,
    accept: Callable[[Vector], bool] | None = None,
    max_backtracks: int = 10,
    accept_ratio: float = 0.1,
) -> tuple[bool, Vector]:
    """Try ``x + 0.5^k * fullstep`` for k = 0.. until the loss ``f`` improves enough.

    A candidate is taken when ``f`` drops, the drop is at least ``accept_ratio`` times the
    predicted ``expected_improve_rate * 0.5^k``, and ``accept(candidate)`` (e.g. the KL
    check) holds. Returns ``(success, new_x)``, with ``new_x = x`` on failure.
    """
    with torch.no_grad():
        f_x = float(f(x))
        for k in range(max_backtracks):
            fraction = 0.5**k
            candidate = x + fraction * fullstep
            improve = f_x - float(f(candidate))
            expected = expected_improve_rate * fraction
            if (
                improve > 0
                and improve > accept_ratio * expected
                and (accept is None or accept(candidate))
            ):
                return True, candidate
    return False, x


def trpo_step(
    loss_fn: ScalarFn,
    kl_fn: ScalarFn,
    params: Vector,
    max_kl: float,
    damping: float = 0.1,
    cg_iters: int = 10,
    max_backtracks: int = 10,
    accept_ratio: float = 0.1,
    kl_tolerance: float = 1.5,
) -> TRPOResult:
    """One TRPO update of the flat parameters ``params`` (n,).

    Natural-gradient direction ``s = F^-1 (-g)`` by conjugate gradient, scaled so that the
    quadratic KL model ``0.5 s^T F s`` equals ``max_kl``, then a backtracking line search
    that accepts a step only where the loss improves and ``kl_fn <= kl_tolerance * max_kl``.
    """
    _check_vector("params", params)
    if max_kl <= 0:
        raise ValueError(f"max_kl: expected a positive value, got {max_kl}")
    x = params.detach().clone().requires_grad_(True)
    loss = loss_fn(x)
    grad = torch.autograd.grad(loss, x)[0].detach()
    fvp = fisher_vector_product(kl_fn(x), [x], damping)
    direction = conjugate_gradient(fvp, -grad, iters=cg_iters)
    shs = 0.5 * float(direction.dot(fvp(direction)))
    loss_before = float(loss.detach())
    start = params.detach().clone()
    if not (shs > 0 and math.isfinite(shs)):
        return TRPOResult(start, False, loss_before, loss_before, 0.0, 0.0)
    scale = math.sqrt(shs / max_kl)
    fullstep = direction / scale
    expected_improve = float(-grad.dot(direction)) / scale

    def kl_ok(candidate: Vector) -> bool:
        return float(kl_fn(candidate)) <= kl_tolerance * max_kl

    success, new_x = backtracking_line_search(
        loss_fn, start, fullstep, expected_improve, kl_ok, max_backtracks, accept_ratio
    )
    with torch.no_grad():
        loss_after = float(loss_fn(new_x))
        kl = float(kl_fn(new_x))
    return TRPOResult(new_x.detach(), success, loss_before, loss_after, kl, expected_improve)
