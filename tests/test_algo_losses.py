"""losses.py against per-sample loop references, with gradients checked."""

from __future__ import annotations

import math

import pytest
import torch

from relaax_zmq.algorithms.common.losses import (
    a3c_loss,
    ddpg_critic_targets,
    dqn_td_targets,
    entropy_bonus,
    huber,
    normalize_advantages,
    policy_gradient_loss,
    polyak,
    ppo_clip_loss,
    ppo_value_loss,
    target_policy_smoothing,
    td_loss,
)

N = 7


def rand(*shape, grad=False, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


def f(x) -> float:
    """A plain float of a (possibly grad-carrying) scalar tensor."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


# ---------------------------------------------------------------- policy gradient and A3C


def test_policy_gradient_loss_value_and_gradient():
    log_probs, adv = rand(N, grad=True, seed=1), rand(N, grad=True)
    loss = policy_gradient_loss(log_probs, adv)
    want = -sum(f(log_probs[i] * adv[i]) for i in range(N)) / N
    assert math.isclose(f(loss), want, rel_tol=1e-12)
    loss.backward()
    torch.testing.assert_close(log_probs.grad, -adv.detach() / N)
    assert adv.grad is None  # advantages are constants
    with pytest.raises(ValueError, match=r"advantages: expected shape \(7,\).*got \(6,\)"):
        policy_gradient_loss(log_probs, adv[:6])


def test_a3c_loss_parts_and_gradients():
    lp, v, ret, ent = rand(N, grad=True, seed=2), rand(N, grad=True), rand(N), rand(N, grad=True)
    out = a3c_loss(lp, v, ret, ent, value_coef=0.25, entropy_coef=0.1)
    policy = -sum(f(lp[i] * (ret[i] - v[i])) for i in range(N)) / N
    value = sum(0.5 * f(ret[i] - v[i]) ** 2 for i in range(N)) / N
    entropy = sum(f(e) for e in ent) / N
    assert math.isclose(f(out.policy_loss), policy, rel_tol=1e-12)
    assert math.isclose(f(out.value_loss), value, rel_tol=1e-12)
    assert math.isclose(f(out.entropy), entropy, rel_tol=1e-12)
    assert math.isclose(f(out.total), policy + 0.25 * value - 0.1 * entropy, rel_tol=1e-12)
    out.total.backward()
    torch.testing.assert_close(lp.grad, -(ret - v).detach() / N)
    torch.testing.assert_close(v.grad, -0.25 * (ret - v).detach() / N)  # no policy-term gradient
    torch.testing.assert_close(ent.grad, torch.full_like(ent, -0.1 / N))
    # the value enters the policy term as a constant, so only log-probs and entropy are
    # differentiated exactly (the value's semi-gradient is checked analytically above)
    v0 = v.detach()
    assert torch.autograd.gradcheck(
        lambda a, c: a3c_loss(a, v0, ret, c, 0.5, 0.01).total,
        (lp.detach().requires_grad_(), ent.detach().requires_grad_()),
    )


def test_entropy_bonus_and_normalize_advantages():
    ent = torch.tensor([1.0, 3.0])
    assert f(entropy_bonus(ent, 0.5)) == -1.0
    adv = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert abs(f(adv.mean())) < 1e-6
    assert abs(f(adv.std(correction=0)) - 1.0) < 1e-6


# ---------------------------------------------------------------- PPO


def ref_ppo(lp, old, adv, clip):
    total = 0.0
    for i in range(len(lp)):
        ratio = math.exp(f(lp[i] - old[i]))
        clipped = min(max(ratio, 1 - clip), 1 + clip)
        total += min(ratio * f(adv[i]), clipped * f(adv[i]))
    return -total / len(lp)


def test_ppo_clip_loss_matches_loop_and_diagnostics():
    old = rand(50, seed=3)
    lp = (old + 0.4 * rand(50)).requires_grad_()
    adv = rand(50)
    out = ppo_clip_loss(lp, old, adv, 0.2)
    assert math.isclose(f(out.loss), ref_ppo(lp, old, adv, 0.2), rel_tol=1e-12)
    ratios = [math.exp(f(lp[i] - old[i])) for i in range(50)]
    fraction = sum(abs(r - 1) > 0.2 for r in ratios) / 50
    assert 0 < fraction < 1 and math.isclose(f(out.clip_fraction), fraction)
    kl = sum((r - 1) - math.log(r) for r in ratios) / 50
    assert math.isclose(f(out.approx_kl), kl, rel_tol=1e-10) and kl > 0
    assert not out.approx_kl.requires_grad and not out.clip_fraction.requires_grad
    same = ppo_clip_loss(old.clone().requires_grad_(), old, adv, 0.2)
    assert f(same.approx_kl) == 0.0 and f(same.clip_fraction) == 0.0
    assert math.isclose(f(same.loss), -f(adv.mean()), rel_tol=1e-12)


def test_ppo_clip_loss_gradient():
    old = torch.zeros(4, dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    # ratios 1.5 (clipped, A>0), 0.5 (not clipped from below, A>0), 1.5 (A<0 keeps), 0.5 (clipped)
    lp = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5], dtype=torch.float64)).requires_grad_()
    ppo_clip_loss(lp, old, adv, 0.2).loss.backward()
    ratio = lp.detach().exp()
    want = torch.tensor([0.0, -ratio[1] / 4, ratio[2] / 4, 0.0], dtype=torch.float64)
    torch.testing.assert_close(lp.grad, want)
    lp2 = (0.05 * rand(5, seed=4)).requires_grad_()
    a2, o2 = rand(5), torch.zeros(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: ppo_clip_loss(x, o2, a2, 0.2).loss, (lp2,))
    with pytest.raises(ValueError, match="clip: expected a positive value, got 0"):
        ppo_clip_loss(lp, old, adv, 0)


def test_ppo_value_loss_clipped_and_plain():
    old, ret = rand(20, seed=5), rand(20)
    values = (old + rand(20)).requires_grad_()
    plain = ppo_value_loss(values, old, ret, None)
    assert math.isclose(f(plain), 0.5 * f(((values - ret) ** 2).mean()), rel_tol=1e-12)
    clipped = ppo_value_loss(values, old, ret, 0.3)
    total = 0.0
    for i in range(20):
        v, o, r = f(values[i]), f(old[i]), f(ret[i])
        vc = o + min(max(v - o, -0.3), 0.3)
        total += 0.5 * max((v - r) ** 2, (vc - r) ** 2)
    assert math.isclose(f(clipped), total / 20, rel_tol=1e-12)
    assert f(clipped) >= f(plain)
    assert torch.autograd.gradcheck(lambda x: ppo_value_loss(x, old, ret, 0.3), (values,))


# ---------------------------------------------------------------- DQN


def test_dqn_targets_double_and_plain():
    torch.manual_seed(6)
    rewards, dones = torch.randn(N), (torch.rand(N) < 0.3).float()
    dones[0], dones[1] = 1.0, 0.0
    online, target = torch.randn(N, 4), torch.randn(N, 4)
    double = dqn_td_targets(rewards, dones, online, target, 0.9, double=True)
    plain = dqn_td_targets(rewards, dones, None, target, 0.9, double=False)
    for i in range(N):
        best = max(range(4), key=lambda a, i=i: f(online[i, a]))
        boot = 0.0 if dones[i] else 0.9 * f(target[i, best])
        assert math.isclose(f(double[i]), f(rewards[i]) + boot, rel_tol=1e-6)
        boot = 0.0 if dones[i] else 0.9 * max(f(q) for q in target[i])
        assert math.isclose(f(plain[i]), f(rewards[i]) + boot, rel_tol=1e-6)
    assert f(plain[0]) == f(rewards[0])
    per_sample = torch.full((N,), 0.9) ** torch.arange(1, N + 1)  # n-step: gamma ** n
    nstep = dqn_td_targets(rewards, dones.bool(), online, target, per_sample)
    best = online.argmax(1)
    want = rewards + per_sample * (1 - dones) * target[torch.arange(N), best]
    torch.testing.assert_close(nstep, want)


def test_dqn_targets_detached_and_checked():
    target = torch.randn(3, 2, requires_grad=True)
    out = dqn_td_targets(torch.zeros(3), torch.zeros(3), target, target, 0.9)
    assert not out.requires_grad
    with pytest.raises(ValueError, match=r"next_q_online: expected shape \(3, 2\)"):
        dqn_td_targets(torch.zeros(3), torch.zeros(3), None, target, 0.9, double=True)
    with pytest.raises(ValueError, match=r"next_q_target: expected shape \(4, actions\)"):
        dqn_td_targets(torch.zeros(4), torch.zeros(4), None, target, 0.9, double=False)


def test_huber_piecewise_and_gradient():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64, requires_grad=True)
    for delta in (0.5, 1.0, 2.0):
        got = huber(x, delta)
        for i, xi in enumerate(x.tolist()):
            want = 0.5 * xi**2 if abs(xi) <= delta else delta * (abs(xi) - 0.5 * delta)
            assert math.isclose(f(got[i]), want, rel_tol=1e-12, abs_tol=1e-15)
        (grad,) = torch.autograd.grad(got.sum(), x)
        torch.testing.assert_close(grad, x.detach().clamp(-delta, delta))


def test_td_loss_weighted_and_errors():
    q = rand(N, grad=True, seed=7)
    targets = 3 * rand(N)
    weights = torch.rand(N, dtype=torch.float64)
    out = td_loss(q, targets, weights)
    want = 0.0
    for i in range(N):
        e = f(targets[i] - q[i])
        want += f(weights[i]) * (0.5 * e * e if abs(e) <= 1 else abs(e) - 0.5)
    assert math.isclose(f(out.loss), want / N, rel_tol=1e-12)
    torch.testing.assert_close(out.td_errors, (targets - q).detach())
    assert not out.td_errors.requires_grad
    out.loss.backward()
    torch.testing.assert_close(q.grad, -weights * (targets - q).detach().clamp(-1, 1) / N)
    unweighted = td_loss(q, targets)
    assert math.isclose(f(unweighted.loss), f(huber(targets - q).mean()), rel_tol=1e-12)


# ---------------------------------------------------------------- DDPG / TD3


def test_ddpg_critic_targets_twin_min():
    r = torch.tensor([1.0, 2.0, 3.0])
    d = torch.tensor([0.0, 1.0, 0.0])
    q1 = torch.tensor([5.0, 5.0, -1.0], requires_grad=True)
    q2 = torch.tensor([4.0, 6.0, 2.0])
    twin = ddpg_critic_targets(r, d, q1, q2, 0.5)
    torch.testing.assert_close(twin, torch.tensor([3.0, 2.0, 2.5]))
    single = ddpg_critic_targets(r, d, q1, None, 0.5)
    torch.testing.assert_close(single, torch.tensor([3.5, 2.0, 2.5]))
    assert not single.requires_grad
    with pytest.raises(ValueError, match=r"q2_next: expected shape \(3,\)"):
        ddpg_critic_targets(r, d, q1, q2[:2], 0.5)


def test_target_policy_smoothing_bounds_and_determinism():
    actions = torch.tensor([[0.0, 0.9], [-0.9, 0.2]]).repeat(500, 1)
    low, high = torch.tensor([-1.0, -0.5]), torch.tensor([1.0, 1.0])
    out = target_policy_smoothing(actions, 0.3, 0.2, low, high, torch.Generator().manual_seed(0))
    assert torch.all(out >= low) and torch.all(out <= high)
    noise = out - actions
    inside = (actions + noise > low + 1e-6) & (actions + noise < high - 1e-6)
    assert torch.all(noise[inside].abs() <= 0.2 + 1e-6)
    assert f(noise[inside].abs().max()) > 0.19  # the clip is reached
    again = target_policy_smoothing(actions, 0.3, 0.2, low, high, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)
    exact = target_policy_smoothing(torch.tensor([[2.0, -2.0]]), 0.0, 0.5, -1.0, 1.0)
    torch.testing.assert_close(exact, torch.tensor([[1.0, -1.0]]))


def test_polyak():
    target, online = torch.zeros(4), torch.arange(4.0)
    torch.testing.assert_close(polyak(target, online, 0.25), 0.25 * online)
    torch.testing.assert_close(polyak(target, online, 1.0), online)
    with pytest.raises(ValueError, match=r"tau: expected a value in \[0, 1\], got 2"):
        polyak(target, online, 2)
