"""vtrace.py against loops written from the paper's explicit sum (IMPALA, eq. 1), and the losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relaax_zmq.algorithms.common.vtrace import VTraceReturns, appo_loss, impala_loss, vtrace

ARGS = ("behaviour_log_probs", "target_log_probs", "rewards", "discounts", "values")
SIZES = [(1, 1, 0), (1, 4, 1), (5, 3, 2), (9, 2, 3), (17, 3, 4)]  # (T, B, seed)


def unroll(T, B, seed, spread=0.3, gamma=0.9):
    """Random inputs; ``spread`` is the scale of log(pi/mu); about 1 step in 8 ends an episode."""
    rng = np.random.default_rng(seed)
    behaviour = rng.normal(-1.0, 0.5, (T, B))
    return {
        "behaviour_log_probs": behaviour,
        "target_log_probs": behaviour + rng.normal(0.0, spread, (T, B)),
        "rewards": rng.normal(size=(T, B)),
        "discounts": gamma * (rng.random((T, B)) > 0.125),
        "values": rng.normal(size=(T, B)),
        "bootstrap_value": rng.normal(size=B),
    }


def torched(inputs, dtype=torch.float64, grad=()):
    return {k: torch.tensor(v, dtype=dtype, requires_grad=k in grad) for k, v in inputs.items()}


def reference(inputs, clip_rho=1.0, clip_c=1.0, clip_pg_rho=1.0, lambda_=1.0, mistake=None):
    """One element at a time, straight from the definition (no recursion):

    v_s = V(x_s) + sum_{t=s}^{T-1} (prod_{i=s}^{t-1} discount_i c_i) delta_t,
    delta_t = rho_t (r_t + discount_t V(x_{t+1}) - V(x_t)), V(x_T) = bootstrap.
    ``mistake`` builds a deliberately wrong variant for the negative controls.
    """
    r, d = inputs["rewards"], inputs["discounts"]
    ratio = np.exp(inputs["target_log_probs"] - inputs["behaviour_log_probs"])
    T, B = r.shape

    def clipped(x, clip):
        return float(x) if clip is None else min(clip, float(x))

    vs, pg = np.zeros((T, B)), np.zeros((T, B))
    for b in range(B):
        V = [*inputs["values"][:, b], inputs["bootstrap_value"][b]]
        for s in range(T):
            total = V[s]
            for t in range(s, T):
                weight = 1.0
                for i in range(s, t):
                    c = 1.0 if mistake == "no_c" else lambda_ * clipped(ratio[i, b], clip_c)
                    weight *= d[i, b] * c
                delta = clipped(ratio[t, b], clip_rho) * (r[t, b] + d[t, b] * V[t + 1] - V[t])
                total += weight * delta
            vs[s, b] = total
        for s in range(T):
            following = vs[s + 1, b] if s + 1 < T else V[T]
            if mistake == "pg_with_values":
                following = V[s + 1]
            pg[s, b] = clipped(ratio[s, b], clip_pg_rho) * (r[s, b] + d[s, b] * following - V[s])
    return vs, pg


def n_step_returns(rewards, discounts, bootstrap):
    """sum_{t>=s} (prod_{i<t} discount_i) r_t + (prod discount) bootstrap, by a forward loop."""
    T, B = rewards.shape
    out = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total, weight = 0.0, 1.0
            for t in range(s, T):
                total += weight * rewards[t, b]
                weight *= discounts[t, b]
            out[s, b] = total + weight * bootstrap[b]
    return out


def check(result, want, atol=1e-5):
    np.testing.assert_allclose(result.vs.numpy(), want[0], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(result.pg_advantages.numpy(), want[1], rtol=1e-5, atol=atol)


# ---------------------------------------------------------------- targets against the paper


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("T,B,seed", SIZES)
def test_default_clipping_matches_the_paper(T, B, seed, dtype):
    inputs = unroll(T, B, seed)
    result = vtrace(**torched(inputs, dtype))
    assert isinstance(result, VTraceReturns)
    assert all(x.shape == (T, B) and x.dtype == dtype for x in result)
    check(result, reference(inputs))
    want_rhos = np.exp(inputs["target_log_probs"] - inputs["behaviour_log_probs"])
    np.testing.assert_allclose(result.rhos.numpy(), want_rhos, rtol=1e-6)


@pytest.mark.parametrize("T,B,seed", SIZES)
def test_no_clipping_matches_the_paper(T, B, seed):
    inputs = unroll(T, B, seed, spread=1.0)
    result = vtrace(**torched(inputs), clip_rho=None, clip_c=None, clip_pg_rho=None)
    check(result, reference(inputs, None, None, None))


@pytest.mark.parametrize("clips", [(1.0, 1.0, 1.0), (2.0, 0.5, 1.5), (None, 1.0, None)])
@pytest.mark.parametrize("seed", [5, 6])
def test_clipping_of_ratios_far_from_one(clips, seed):
    inputs = unroll(12, 4, seed, spread=2.0)
    clip_rho, clip_c, clip_pg_rho = clips
    result = vtrace(**torched(inputs), clip_rho=clip_rho, clip_c=clip_c, clip_pg_rho=clip_pg_rho)
    rhos = result.rhos.numpy()
    assert (rhos > 2.0).sum() >= 3 and (rhos < 0.5).sum() >= 3  # every clip level bites
    check(result, reference(inputs, *clips))
    unclipped = vtrace(**torched(inputs), clip_rho=None, clip_c=None, clip_pg_rho=None)
    assert not torch.allclose(result.vs, unclipped.vs, atol=1e-3)
    assert not torch.allclose(result.pg_advantages, unclipped.pg_advantages, atol=1e-3)


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("T,B,seed", SIZES[2:])
def test_lambda_below_one_matches_the_paper(T, B, seed, lambda_):
    inputs = unroll(T, B, seed, spread=0.8)
    check(vtrace(**torched(inputs), lambda_=lambda_), reference(inputs, lambda_=lambda_))
    if lambda_ == 0.0:  # no traces: one-step targets V + rho (r + discount V' - V)
        x = torched(inputs)
        result = vtrace(**x, lambda_=0.0)
        v_next = torch.cat([x["values"][1:], x["bootstrap_value"][None]])
        delta = x["rewards"] + x["discounts"] * v_next - x["values"]
        torch.testing.assert_close(result.vs, x["values"] + result.rhos.clamp(max=1.0) * delta)


def test_an_episode_end_cuts_the_unroll():
    T, B, cut = 8, 3, 3
    inputs = unroll(T, B, seed=7, spread=0.7)
    inputs["discounts"][:] = 0.9
    inputs["discounts"][cut] = 0.0  # every stream's episode ended after step 3
    before = vtrace(**torched(inputs))
    check(before, reference(inputs))

    rng = np.random.default_rng(8)
    later = dict(inputs)
    for name in ("rewards", "values", "target_log_probs"):
        later[name] = inputs[name].copy()
        later[name][cut + 1 :] += rng.normal(0.0, 5.0, (T - cut - 1, B))
    later["bootstrap_value"] = inputs["bootstrap_value"] + 10.0
    after = vtrace(**torched(later))
    check(after, reference(later))
    for old, new in ((before.vs, after.vs), (before.pg_advantages, after.pg_advantages)):
        assert torch.equal(old[: cut + 1], new[: cut + 1])  # nothing leaks across the cut
        assert not torch.allclose(old[cut + 1 :], new[cut + 1 :], atol=1e-2)


@pytest.mark.parametrize("clip", [None, 1.0])
@pytest.mark.parametrize("T,B,seed", SIZES)
def test_on_policy_is_the_n_step_bootstrapped_return(T, B, seed, clip):
    inputs = unroll(T, B, seed)
    inputs["target_log_probs"] = inputs["behaviour_log_probs"].copy()
    result = vtrace(**torched(inputs), clip_rho=clip, clip_c=clip, clip_pg_rho=clip)
    want = n_step_returns(inputs["rewards"], inputs["discounts"], inputs["bootstrap_value"])
    np.testing.assert_allclose(result.vs.numpy(), want, rtol=1e-5, atol=1e-5)
    following = np.concatenate([want[1:], inputs["bootstrap_value"][None]])
    advantage = inputs["rewards"] + inputs["discounts"] * following - inputs["values"]
    np.testing.assert_allclose(result.pg_advantages.numpy(), advantage, rtol=1e-5, atol=1e-5)
    assert torch.equal(result.rhos, torch.ones(T, B, dtype=torch.float64))


@pytest.mark.parametrize("mistake", ["no_c", "pg_with_values"])
def test_negative_control_a_wrong_reference_is_caught(mistake):
    inputs = unroll(10, 3, seed=9, spread=1.0)
    result = vtrace(**torched(inputs))
    check(result, reference(inputs))
    wrong_vs, wrong_pg = reference(inputs, mistake=mistake)
    wrong = wrong_pg if mistake == "pg_with_values" else wrong_vs
    got = result.pg_advantages if mistake == "pg_with_values" else result.vs
    assert np.abs(got.numpy() - wrong).max() > 1e-2


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ARGS[1:])
def test_a_wrong_shape_is_named(name):
    inputs = torched(unroll(4, 3, seed=0))
    inputs[name] = inputs[name][:, :2]
    with pytest.raises(ValueError, match=rf"^{name}: expected shape \(4, 3\).*got \(4, 2\)$"):
        vtrace(**inputs)


def test_wrong_shapes_of_behaviour_and_bootstrap_are_named():
    inputs = torched(unroll(4, 3, seed=0))
    with pytest.raises(ValueError, match=r"^bootstrap_value: expected shape \(3,\).*got \(4,\)$"):
        vtrace(**{**inputs, "bootstrap_value": torch.zeros(4)})
    flat = inputs["behaviour_log_probs"][:, 0]
    with pytest.raises(
        ValueError, match=r"^behaviour_log_probs: expected shape \(T, B\), got \(4,\)"
    ):
        vtrace(**{**inputs, "behaviour_log_probs": flat})
    with pytest.raises(ValueError, match=r"^clip_c: expected a positive value or None, got 0"):
        vtrace(**inputs, clip_c=0.0)
    with pytest.raises(ValueError, match=r"^lambda_: expected a value in \[0, 1\], got 1.5"):
        vtrace(**inputs, lambda_=1.5)
    returns = vtrace(**inputs)
    logp, values = inputs["target_log_probs"], inputs["values"]
    with pytest.raises(ValueError, match=r"^entropy: expected shape \(4, 3\).*got \(4,\)$"):
        impala_loss(logp, values[:, 0], values, returns, value_coef=0.5, entropy_coef=0.01)
    with pytest.raises(ValueError, match=r"^behaviour_log_probs: expected shape \(4, 3\)"):
        appo_loss(logp, logp.T, values, values, returns, clip=0.2, value_coef=1, entropy_coef=0)


# ---------------------------------------------------------------- losses


def loss_inputs(seed, spread, T=6, B=4):
    raw = unroll(T, B, seed, spread=spread)
    raw["entropy"] = np.random.default_rng(seed + 100).random((T, B))
    grad = ("target_log_probs", "values", "entropy", "behaviour_log_probs", "bootstrap_value")
    inputs = torched(raw, grad=grad)
    entropy = inputs.pop("entropy")
    returns = vtrace(**inputs)  # fed the grad-carrying tensors, as a learner would
    assert not any(x.requires_grad for x in returns)
    return inputs, entropy, returns


def test_impala_loss_value_figures_and_gradients():
    inputs, entropy, returns = loss_inputs(seed=11, spread=0.8)
    logp, values = inputs["target_log_probs"], inputs["values"]
    loss, figures = impala_loss(logp, entropy, values, returns, value_coef=0.25, entropy_coef=0.1)
    n = logp.numel()
    pg, vs = returns.pg_advantages, returns.vs
    policy = -sum(float(logp.detach().flatten()[i] * pg.flatten()[i]) for i in range(n)) / n
    value = (
        sum(0.5 * float(vs.flatten()[i] - values.detach().flatten()[i]) ** 2 for i in range(n)) / n
    )
    mean_entropy = float(entropy.detach().mean())
    assert set(figures) == {"policy_loss", "value_loss", "entropy", "mean_rho"}
    assert all(type(x) is float for x in figures.values())
    assert math.isclose(figures["policy_loss"], policy, rel_tol=1e-9)
    assert math.isclose(figures["value_loss"], value, rel_tol=1e-9)
    assert math.isclose(figures["entropy"], mean_entropy, rel_tol=1e-12)
    assert math.isclose(figures["mean_rho"], float(returns.rhos.mean()), rel_tol=1e-12)
    assert math.isclose(
        float(loss.detach()), policy + 0.25 * value - 0.1 * mean_entropy, rel_tol=1e-9
    )
    loss.backward()
    torch.testing.assert_close(logp.grad, -pg / n)  # no path through the ratios in pg
    torch.testing.assert_close(values.grad, -0.25 * (vs - values.detach()) / n)  # vs is a constant
    torch.testing.assert_close(entropy.grad, torch.full_like(entropy, -0.1 / n))
    assert inputs["behaviour_log_probs"].grad is None and inputs["bootstrap_value"].grad is None


def test_impala_loss_can_standardise_its_advantages():
    inputs, entropy, returns = loss_inputs(seed=14, spread=0.8)
    logp, values = inputs["target_log_probs"], inputs["values"]
    loss, figures = impala_loss(
        logp, entropy, values, returns, value_coef=0.5, entropy_coef=0.0, normalize_advantages=True
    )
    pg = returns.pg_advantages.numpy().ravel()
    standard = (pg - pg.mean()) / (pg.std() + 1e-8)
    policy = -np.mean(logp.detach().numpy().ravel() * standard)
    assert math.isclose(figures["policy_loss"], policy, rel_tol=1e-9)
    raw, _ = impala_loss(logp, entropy, values, returns, value_coef=0.5, entropy_coef=0.0)
    assert not math.isclose(float(raw.detach()), float(loss.detach()), rel_tol=1e-3)
    loss.backward()
    want = -torch.as_tensor(standard.reshape(logp.shape), dtype=logp.dtype) / logp.numel()
    torch.testing.assert_close(logp.grad, want)


@pytest.mark.parametrize("normalize", [True, False])
def test_appo_loss_value_and_gradients(normalize):
    inputs, entropy, returns = loss_inputs(seed=12, spread=0.5)
    logp, old, values = (inputs[k] for k in ("target_log_probs", "behaviour_log_probs", "values"))
    loss, figures = appo_loss(
        logp,
        old,
        entropy,
        values,
        returns,
        clip=0.2,
        value_coef=0.5,
        entropy_coef=0.01,
        normalize_advantages=normalize,
    )
    ratio = (logp - old).detach().exp().numpy().ravel()
    adv = returns.pg_advantages.numpy().ravel()
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    surrogate = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv))
    value = 0.5 * np.mean((returns.vs.numpy() - values.detach().numpy()) ** 2)
    want = surrogate + 0.5 * value - 0.01 * float(entropy.detach().mean())
    assert math.isclose(float(loss.detach()), want, rel_tol=1e-9)
    assert math.isclose(figures["policy_loss"], surrogate, rel_tol=1e-9)
    assert math.isclose(figures["clip_fraction"], np.mean(np.abs(ratio - 1) > 0.2), rel_tol=1e-12)
    assert set(figures) == {"policy_loss", "value_loss", "entropy", "mean_rho", "clip_fraction"}
    loss.backward()
    assert logp.grad is not None and logp.grad.abs().sum() > 0
    torch.testing.assert_close(values.grad, -0.5 * (returns.vs - values.detach()) / values.numel())
    assert old.grad is None and inputs["bootstrap_value"].grad is None


def test_appo_clip_fraction_on_and_off_policy():
    inputs, entropy, returns = loss_inputs(seed=13, spread=0.0)  # target == behaviour
    logp, values = inputs["target_log_probs"], inputs["values"]
    loss, figures = appo_loss(
        logp, logp.detach(), entropy, values, returns, clip=0.1, value_coef=0.5, entropy_coef=0
    )
    assert figures["clip_fraction"] == 0.0 and figures["mean_rho"] == 1.0
    loss.backward()  # ratio 1, nothing clipped: the plain policy gradient of the advantages
    adv = returns.pg_advantages
    want = -((adv - adv.mean()) / (adv.std(correction=0) + 1e-8)) / adv.numel()
    torch.testing.assert_close(logp.grad, want)

    inputs, entropy, returns = loss_inputs(seed=14, spread=2.0)
    logp, old, values = (inputs[k] for k in ("target_log_probs", "behaviour_log_probs", "values"))
    _, figures = appo_loss(
        logp, old, entropy, values, returns, clip=0.1, value_coef=0.5, entropy_coef=0
    )
    assert figures["clip_fraction"] > 0.5
