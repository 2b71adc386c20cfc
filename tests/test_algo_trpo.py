"""trpo.py: CG against a direct solve, FVP against an explicit KL Hessian, line search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relaax_zmq.algorithms.common.trpo import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    trpo_step,
)

DT = torch.float64


def spd(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    return torch.tensor(m @ m.T + 0.5 * np.eye(n), dtype=DT)


def test_conjugate_gradient_solves_spd_system():
    a = spd(8, 0)
    b = torch.tensor(np.random.default_rng(1).normal(size=8), dtype=DT)
    x = conjugate_gradient(lambda v: a @ v, b, iters=50, residual_tol=1e-20)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), rtol=1e-8)
    # n iterations suffice in exact arithmetic; few iterations give only an approximation
    rough = conjugate_gradient(lambda v: a @ v, b, iters=1)
    assert not np.allclose(rough.numpy(), x.numpy(), rtol=1e-3)


def test_conjugate_gradient_stops_on_small_residual():
    calls = []

    def fvp(v):
        calls.append(1)
        return 2.0 * v

    x = conjugate_gradient(fvp, torch.ones(3, dtype=DT), iters=10)
    torch.testing.assert_close(x, torch.full((3,), 0.5, dtype=DT))
    assert len(calls) == 1  # exact after one step for a multiple of the identity
    with pytest.raises(ValueError, match=r"b: expected a 1-D vector, got shape \(2, 2\)"):
        conjugate_gradient(fvp, torch.ones(2, 2))


# ---------------------------------------------------------------- a tiny softmax policy

OBS = torch.tensor(np.random.default_rng(2).normal(size=(6, 3)), dtype=DT)
SIZES = [(4, 3), (4,), (2, 4), (2,)]  # obs 3 -> hidden 4 -> 2 actions
SIZE = sum(math.prod(s) for s in SIZES)


def unflatten(x):
    out, at = [], 0
    for shape in SIZES:
        n = math.prod(shape)
        out.append(x[at : at + n].reshape(shape))
        at += n
    return out


def log_policy(x):
    w1, b1, w2, b2 = unflatten(x)
    return torch.log_softmax(torch.tanh(OBS @ w1.T + b1) @ w2.T + b2, dim=-1)


def kl_from(old_x):
    old = log_policy(old_x).detach()

    def kl(x):
        return (old.exp() * (old - log_policy(x))).sum(-1).mean()

    return kl


def test_fisher_vector_product_matches_explicit_hessian():
    x0 = torch.tensor(np.random.default_rng(3).normal(size=SIZE), dtype=DT)
    kl = kl_from(x0)
    hessian = torch.autograd.functional.hessian(kl, x0)
    # at the old parameters the KL Hessian is the Fisher matrix E[grad log p grad log p^T]
    fisher = torch.zeros(SIZE, SIZE, dtype=DT)
    jac = torch.autograd.functional.jacobian(log_policy, x0)  # (obs, actions, params)
    probs = log_policy(x0).exp().detach()
    for i in range(OBS.shape[0]):
        for a in range(2):
            fisher += probs[i, a] * torch.outer(jac[i, a], jac[i, a]) / OBS.shape[0]
    torch.testing.assert_close(hessian, fisher, atol=1e-10, rtol=1e-8)
    x = x0.clone().requires_grad_()
    product = fisher_vector_product(kl(x), [x], damping=0.1)
    rng = np.random.default_rng(4)
    for _ in range(3):  # the product is reusable
        v = torch.tensor(rng.normal(size=SIZE), dtype=DT)
        torch.testing.assert_close(product(v), fisher @ v + 0.1 * v, atol=1e-10, rtol=1e-8)
    with pytest.raises(ValueError, match=rf"v: expected shape \({SIZE},\), got shape \(3,\)"):
        product(torch.ones(3, dtype=DT))


def test_fisher_vector_product_over_a_parameter_list():
    w = torch.randn(3, 2, dtype=DT, requires_grad=True)
    b = torch.randn(2, dtype=DT, requires_grad=True)
    kl = 0.5 * (w**2).sum() + 2.0 * (b**2).sum() + (w.sum() * b.sum())
    h = torch.autograd.functional.hessian(
        lambda flat: (
            0.5 * (flat[:6] ** 2).sum()
            + 2.0 * (flat[6:] ** 2).sum()
            + flat[:6].sum() * flat[6:].sum()
        ),
        torch.zeros(8, dtype=DT),
    )
    v = torch.randn(8, dtype=DT)
    torch.testing.assert_close(fisher_vector_product(kl, [w, b], 0.0)(v), h @ v)


# ---------------------------------------------------------------- line search


def quadratic(a, b):
    return lambda x: 0.5 * x @ a @ x - b @ x


def test_line_search_takes_full_step_to_the_minimum():
    a, b = spd(4, 5), torch.ones(4, dtype=DT)
    f = quadratic(a, b)
    x = torch.zeros(4, dtype=DT)
    optimum = torch.linalg.solve(a, b)
    expected = float(b @ optimum)  # -g . fullstep with g = -b at x = 0
    ok, new = backtracking_line_search(f, x, optimum, expected)
    assert ok
    torch.testing.assert_close(new, optimum)


def test_line_search_backtracks_an_overshoot():
    f = quadratic(torch.eye(1, dtype=DT), torch.ones(1, dtype=DT))  # minimum at 1
    x = torch.zeros(1, dtype=DT)
    fullstep = torch.tensor([8.0], dtype=DT)
    ok, new = backtracking_line_search(f, x, fullstep, expected_improve_rate=8.0)
    # fractions 1, 1/2, 1/4 give x = 8, 4, 2 (f = 24, 4, 0: no improvement); 1/8 gives 1
    assert ok and float(new) == 1.0
    ok, same = backtracking_line_search(f, x, fullstep, 8.0, max_backtracks=3)
    assert not ok and float(same) == 0.0


def test_line_search_respects_accept_ratio_and_callback():
    f = quadratic(torch.eye(1, dtype=DT), torch.ones(1, dtype=DT))
    x, step = torch.zeros(1, dtype=DT), torch.ones(1, dtype=DT)
    # full step: improvement 0.5 against a predicted 6 (ratio 0.083 < 0.1): rejected;
    # half step: improvement 0.375 against 3 (ratio 0.125): taken
    ok, new = backtracking_line_search(f, x, step, 6.0, accept_ratio=0.1)
    assert ok and float(new) == 0.5
    ok, new = backtracking_line_search(f, x, step, 6.0, accept_ratio=0.05)
    assert ok and float(new) == 1.0
    seen = []
    ok, new = backtracking_line_search(f, x, step, 1.0, accept=lambda c: seen.append(c) or False)
    assert not ok and float(new) == 0.0 and len(seen) == 10


# ---------------------------------------------------------------- the TRPO step


def test_trpo_step_is_the_natural_gradient_step_on_a_quadratic_kl():
    fisher = spd(5, 6)
    g = torch.tensor(np.random.default_rng(7).normal(size=5), dtype=DT)
    x0 = torch.tensor(np.random.default_rng(8).normal(size=5), dtype=DT)
    max_kl = 0.01

    def loss(x):
        return g @ (x - x0)

    def kl(x):
        return 0.5 * (x - x0) @ fisher @ (x - x0)

    result = trpo_step(loss, kl, x0, max_kl, damping=0.0, cg_iters=20)
    natural = torch.linalg.solve(fisher, g)
    want = x0 - math.sqrt(2 * max_kl / float(g @ natural)) * natural
    assert result.success
    torch.testing.assert_close(result.params, want, atol=1e-8, rtol=1e-6)
    assert math.isclose(result.kl, max_kl, rel_tol=1e-6)
    assert math.isclose(
        result.loss_before - result.loss_after, result.expected_improve, rel_tol=1e-6
    )


def test_trpo_step_improves_a_policy_within_the_trust_region():
    x0 = torch.tensor(np.random.default_rng(9).normal(size=SIZE), dtype=DT)
    actions = torch.tensor([0, 1, 1, 0, 1, 0])
    advantages = torch.tensor([1.0, -0.5, 2.0, 0.3, -1.0, 0.7], dtype=DT)
    old = log_policy(x0).detach()[torch.arange(6), actions]

    def surrogate(x):
        ratio = (log_policy(x)[torch.arange(6), actions] - old).exp()
        return -(ratio * advantages).mean()

    result = trpo_step(surrogate, kl_from(x0), x0, max_kl=0.01)
    assert result.success
    assert result.loss_after < result.loss_before
    assert 0 < result.kl <= 1.5 * 0.01
    assert not torch.equal(result.params, x0) and not result.params.requires_grad


def test_trpo_step_with_zero_gradient_keeps_parameters():
    x0 = torch.ones(3, dtype=DT)
    result = trpo_step(lambda x: (x * 0).sum(), lambda x: ((x - x0) ** 2).sum(), x0, 0.01)
    assert not result.success
    torch.testing.assert_close(result.params, x0)
    with pytest.raises(ValueError, match="max_kl: expected a positive value, got 0"):
        trpo_step(lambda x: x.sum(), lambda x: (x**2).sum(), x0, 0.0)
