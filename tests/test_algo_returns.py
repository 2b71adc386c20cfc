"""returns.py against slow references written as explicit loops over time steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relaax_zmq.algorithms.common.returns import (
    discounted_returns,
    gae,
    gae_to_segment_ends,
    n_step_returns,
    td_lambda,
)

# ---------------------------------------------------------------- slow references (1-D)


def ref_discounted(r, d, bootstrap, gamma):
    out = np.zeros(len(r))
    running = bootstrap
    for t in reversed(range(len(r))):
        running = r[t] + (0.0 if d[t] else gamma * running)
        out[t] = running
    return out


def ref_n_step(r, d, v_next, gamma, n, trunc=None):
    T = len(r)
    trunc = np.zeros(T) if trunc is None else trunc
    out = np.zeros(T)
    for t in range(T):
        total, discount = 0.0, 1.0
        last = min(t + n, T) - 1
        for j in range(t, last + 1):
            total += discount * r[j]
            discount *= gamma
            if d[j]:
                break
            if trunc[j] or j == last:
                total += discount * v_next[j]
                break
        out[t] = total
    return out


def ref_gae(r, v, d, last_value, gamma, lam, trunc=None, final=None):
    T = len(r)
    adv = np.zeros(T)
    following = 0.0
    for t in reversed(range(T)):
        if d[t]:
            next_value, carry = 0.0, 0.0
        elif trunc is not None and trunc[t]:
            next_value, carry = final[t], 0.0
        else:
            next_value = last_value if t == T - 1 else v[t + 1]
            carry = following
        delta = r[t] + gamma * next_value - v[t]
        adv[t] = delta + gamma * lam * carry
        following = adv[t]
    return adv, adv + v


def ref_lambda_return(r, v, d, last_value, gamma, lam):
    T = len(r)
    out = np.zeros(T)
    following = last_value
    for t in reversed(range(T)):
        next_value = last_value if t == T - 1 else v[t + 1]
        if d[t]:
            out[t] = r[t]
        else:
            out[t] = r[t] + gamma * ((1 - lam) * next_value + lam * following)
        following = out[t]
    return out


def columns(fn, *arrays, **kw):
    """Apply a 1-D reference to each batch column of (T, B) arrays (scalars/1-D per column)."""
    batch = arrays[0].shape[1]
    cols = []
    for b in range(batch):
        args = [a[:, b] if a.ndim == 2 else a[b] for a in arrays]
        cols.append(fn(*args, **kw))
    if isinstance(cols[0], tuple):
        return tuple(np.stack([c[i] for c in cols], axis=1) for i in range(len(cols[0])))
    return np.stack(cols, axis=1)


@pytest.fixture
def segment():
    rng = np.random.default_rng(0)
    T, B = 9, 3
    r = rng.normal(size=(T, B))
    v = rng.normal(size=(T, B))
    v_next = rng.normal(size=(T, B))
    d = np.zeros((T, B))
    d[3, 0] = d[8, 1] = d[0, 2] = d[5, 2] = 1  # ends mid-segment, at the end, at the start
    trunc = np.zeros((T, B))
    trunc[6, 0] = trunc[2, 1] = trunc[8, 2] = 1
    last = rng.normal(size=B)
    final = rng.normal(size=(T, B))
    return r, v, v_next, d, trunc, last, final


# ---------------------------------------------------------------- discounted returns


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_discounted_matches_loop(segment, gamma):
    r, _, _, d, _, last, _ = segment
    got = discounted_returns(r, d, gamma, bootstrap=last)
    np.testing.assert_allclose(got, columns(ref_discounted, r, d, last, gamma=gamma), rtol=1e-12)


def test_discounted_special_gammas():
    r = np.array([1.0, 2.0, 3.0])
    d = np.zeros(3)
    np.testing.assert_allclose(discounted_returns(r, d, 0.0, 100.0), r)
    np.testing.assert_allclose(discounted_returns(r, d, 1.0, 10.0), [16.0, 15.0, 13.0])
    np.testing.assert_allclose(discounted_returns(r, [0, 1, 0], 1.0, 10.0), [3.0, 2.0, 13.0])


def test_discounted_types_and_gradient():
    r = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)
    out = discounted_returns(r, torch.tensor([False, True, False]), 0.5, 4.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([2.0, 2.0, 5.0]))
    rd = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    boot = torch.rand(2, dtype=torch.float64, requires_grad=True)
    dones = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: discounted_returns(a, dones, 0.9, b), (rd, boot))
    ints = discounted_returns(np.array([1, 2]), np.array([0, 0]), 1.0)
    assert isinstance(ints, np.ndarray) and ints.dtype == np.float64
    np.testing.assert_allclose(ints, [3.0, 2.0])


def test_discounted_bad_shapes():
    with pytest.raises(ValueError, match=r"dones: expected shape \(3, 2\).*got \(3,\)"):
        discounted_returns(np.zeros((3, 2)), np.zeros(3), 0.9)
    with pytest.raises(ValueError, match=r"bootstrap: expected a scalar or shape \(2,\)"):
        discounted_returns(np.zeros((3, 2)), np.zeros((3, 2)), 0.9, np.zeros(3))
    with pytest.raises(ValueError, match=r"gamma: expected a value in \[0, 1\], got 1.5"):
        discounted_returns(np.zeros(3), np.zeros(3), 1.5)


# ---------------------------------------------------------------- n-step returns


@pytest.mark.parametrize("n", [1, 2, 3, 5, 20])
@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_n_step_matches_loop(segment, n, gamma):
    r, _, v_next, d, trunc, _, _ = segment
    got = n_step_returns(r, d, v_next, gamma, n)
    np.testing.assert_allclose(got, columns(ref_n_step, r, d, v_next, gamma=gamma, n=n), atol=1e-12)
    got = n_step_returns(r, d, v_next, gamma, n, truncations=trunc)
    want = columns(lambda *a: ref_n_step(*a[:3], gamma, n, a[3]), r, d, v_next, trunc)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_n_step_limits(segment):
    r, _, v_next, d, _, _, _ = segment
    one = n_step_returns(r, d, v_next, 0.9, 1)
    np.testing.assert_allclose(one, r + 0.9 * (1 - d) * v_next)
    no_dones = np.zeros_like(d)
    whole = n_step_returns(r, no_dones, v_next, 0.9, len(r))
    np.testing.assert_allclose(whole, discounted_returns(r, no_dones, 0.9, v_next[-1]))


def test_n_step_gradient_and_errors():
    v_next = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
    r = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
    d = torch.zeros(6, 2, dtype=torch.float64)
    d[2, 1] = 1
    assert torch.autograd.gradcheck(lambda a, b: n_step_returns(a, d, b, 0.8, 3), (r, v_next))
    with pytest.raises(ValueError, match="n: expected a positive integer, got 0"):
        n_step_returns(np.zeros(3), np.zeros(3), np.zeros(3), 0.9, 0)
    with pytest.raises(ValueError, match=r"values_next: expected shape \(3,\)"):
        n_step_returns(np.zeros(3), np.zeros(3), np.zeros(4), 0.9, 2)


# ---------------------------------------------------------------- GAE and TD(lambda)


@pytest.mark.parametrize(
    "gamma,lam", [(0.99, 0.95), (0.0, 0.9), (1.0, 1.0), (0.9, 0.0), (1.0, 0.5)]
)
def test_gae_matches_loop(segment, gamma, lam):
    r, v, _, d, trunc, last, final = segment
    adv, ret = gae(r, v, d, last, gamma, lam)
    want_adv, want_ret = columns(ref_gae, r, v, d, last, gamma=gamma, lam=lam)
    np.testing.assert_allclose(adv, want_adv, atol=1e-12)
    np.testing.assert_allclose(ret, want_ret, atol=1e-12)
    adv, ret = gae(r, v, d, last, gamma, lam, truncations=trunc, final_values=final)
    want_adv, want_ret = columns(
        lambda *a: ref_gae(*a[:4], gamma, lam, a[4], a[5]), r, v, d, last, trunc, final
    )
    np.testing.assert_allclose(adv, want_adv, atol=1e-12)
    np.testing.assert_allclose(ret, want_ret, atol=1e-12)


def test_gae_lambda_zero_is_td_error(segment):
    r, v, _, d, _, last, _ = segment
    next_v = np.concatenate([v[1:], last[None]])
    adv, _ = gae(r, v, d, last, 0.9, 0.0)
    np.testing.assert_allclose(adv, r + 0.9 * (1 - d) * next_v - v, atol=1e-12)


def test_gae_lambda_one_is_monte_carlo_minus_value(segment):
    r, v, _, d, _, last, _ = segment
    adv, ret = gae(r, v, d, last, 0.9, 1.0)
    mc = discounted_returns(r, d, 0.9, last)
    np.testing.assert_allclose(adv, mc - v, atol=1e-12)
    np.testing.assert_allclose(ret, mc, atol=1e-12)


def test_gae_truncation_equals_bootstrapped_termination(segment):
    # A truncated step is a terminated one whose reward carries gamma * V(final obs).
    r, v, _, d, trunc, last, final = segment
    trunc = trunc * (1 - d)
    adv, _ = gae(r, v, d, last, 0.95, 0.9, truncations=trunc, final_values=final)
    folded = r + 0.95 * trunc * final
    want, _ = gae(folded, v, np.maximum(d, trunc), last, 0.95, 0.9)
    np.testing.assert_allclose(adv, want, atol=1e-12)


def test_gae_truncation_differs_from_termination():
    r, v, d = np.ones(3), np.zeros(3), np.zeros(3)
    trunc = np.array([0.0, 1.0, 0.0])
    final = np.array([0.0, 5.0, 0.0])
    adv, _ = gae(r, v, d, 0.0, 1.0, 1.0, truncations=trunc, final_values=final)
    np.testing.assert_allclose(adv, [7.0, 6.0, 1.0])
    adv_terminal, _ = gae(r, v, trunc, 0.0, 1.0, 1.0)
    np.testing.assert_allclose(adv_terminal, [2.0, 1.0, 1.0])


def test_gae_torch_gradient_and_errors():
    r = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    v = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    last = torch.rand(2, dtype=torch.float64, requires_grad=True)
    d = torch.zeros(5, 2, dtype=torch.float64)
    d[1, 0] = 1
    assert torch.autograd.gradcheck(lambda a, b, c: gae(a, b, d, c, 0.9, 0.8), (r, v, last))
    out = gae(r.float(), v.float(), d.bool(), 0.0, 0.9, 0.8)
    assert all(isinstance(o, torch.Tensor) and o.dtype == torch.float32 for o in out)
    with pytest.raises(ValueError, match="expected both or neither"):
        gae(np.zeros(3), np.zeros(3), np.zeros(3), 0.0, 0.9, 0.9, truncations=np.zeros(3))
    with pytest.raises(ValueError, match=r"values: expected shape \(3,\).*got \(2,\)"):
        gae(np.zeros(3), np.zeros(2), np.zeros(3), 0.0, 0.9, 0.9)
    with pytest.raises(ValueError, match=r"lam: expected a value in \[0, 1\]"):
        gae(np.zeros(3), np.zeros(3), np.zeros(3), 0.0, 0.9, -0.1)


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_td_lambda_matches_recursive_lambda_return(segment, lam):
    r, v, _, d, _, last, _ = segment
    got = td_lambda(r, v, d, last, 0.9, lam)
    want = columns(ref_lambda_return, r, v, d, last, gamma=0.9, lam=lam)
    np.testing.assert_allclose(got, want, atol=1e-12)


# ---------------------------------------------------------------- a batch of segments at once


def recorded_segment(rng, length, terminal, with_next):
    from relaax_zmq.algorithms.common.recorder import Segment

    return Segment(
        session_id=int(rng.integers(100)),
        states=rng.normal(size=(length, 3)).astype(np.float32),
        actions=rng.integers(0, 2, length),
        rewards=rng.normal(size=length).astype(np.float32),
        extras={"value": rng.normal(size=length).astype(np.float32)},
        terminal=terminal,
        truncated=False,
        next_state=rng.normal(size=3).astype(np.float32) if with_next else None,
    )


def side_by_side(rng, lengths, terminal):
    """(rewards, values, dones, ends) (T, B) of segments padded with random garbage, and
    (B,) bootstraps; each segment's own (rewards, values) for the reference."""
    steps = max(lengths)
    rewards, values = rng.normal(size=(2, steps, len(lengths)))  # padding is garbage too
    dones, ends = np.zeros((2, steps, len(lengths)), bool)
    for b, (length, term) in enumerate(zip(lengths, terminal, strict=True)):
        ends[length - 1, b] = True
        dones[length - 1, b] = term
    bootstraps = rng.normal(size=len(lengths))
    return rewards, values, dones, ends, bootstraps


def reference_per_column(rewards, values, dones, ends, bootstraps, gamma, lam):
    """ref_gae run on each column up to its end; (T, B) with zeros in the padding."""
    adv, ret = np.zeros((2, *rewards.shape))
    for b in range(rewards.shape[1]):
        n = int(np.argmax(ends[:, b])) + 1
        d = dones[:n, b].astype(float)
        last = 0.0 if d[-1] else bootstraps[b]
        adv[:n, b], ret[:n, b] = ref_gae(rewards[:n, b], values[:n, b], d, last, gamma, lam)
    return adv, ret


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_to_segment_ends_matches_a_loop_per_segment(gamma, lam):
    rng = np.random.default_rng(5)
    lengths, terminal = [5, 1, 9, 3, 9], [False, True, True, False, False]
    arrays = side_by_side(rng, lengths, terminal)
    mask = np.arange(9)[:, None] < np.array(lengths)[None, :]
    expected_adv, expected_ret = reference_per_column(*arrays, gamma, lam)
    adv, ret = gae_to_segment_ends(*arrays, gamma, lam)
    np.testing.assert_allclose(adv[mask], expected_adv[mask], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ret[mask], expected_ret[mask], rtol=1e-10, atol=1e-12)
    t_adv, _ = gae_to_segment_ends(*(torch.as_tensor(a) for a in arrays), gamma, lam)
    assert isinstance(t_adv, torch.Tensor)
    np.testing.assert_allclose(t_adv.numpy()[mask], expected_adv[mask], rtol=1e-10)


def test_da3c_returns_are_gae_to_segment_ends_from_the_value_after_each_segment():
    from types import SimpleNamespace

    from relaax_zmq.algorithms.da3c.agent import DA3CAgent, Padded

    rng = np.random.default_rng(6)
    lengths, terminal = [4, 2, 6], [False, True, False]
    rewards, _, dones, ends, _ = side_by_side(rng, lengths, terminal)
    values = rng.normal(size=(7, 3))  # (T + 1, B): row lengths[b] is column b's bootstrap
    bootstraps = values[lengths, np.arange(3)]
    padded = Padded(None, None, rewards, None, dones, ends, np.array(lengths))
    for lam, expect_lam in ((None, 1.0), (0.9, 0.9)):
        agent = SimpleNamespace(config=SimpleNamespace(gamma=0.95, gae_lambda=lam))
        found = DA3CAgent.returns(agent, padded, torch.as_tensor(values)).numpy()
        _, expected = reference_per_column(
            rewards, values[:-1], dones, ends, bootstraps, 0.95, expect_lam
        )
        mask = np.arange(6)[:, None] < np.array(lengths)[None, :]
        np.testing.assert_allclose(found[mask], expected[mask], rtol=1e-10)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_segments_gae_matches_a_loop_per_segment(gamma, lam):
    from relaax_zmq.algorithms.common.segment_returns import segments_gae

    rng = np.random.default_rng(3)
    shapes = [
        (7, False, True),
        (1, True, False),
        (16, False, True),
        (4, True, False),
        (1, False, True),
    ]
    segments = [recorded_segment(rng, *shape) for shape in shapes]
    bootstraps = np.array([0.0 if s.terminal else rng.normal() for s in segments])
    advantages, returns = segments_gae(segments, bootstraps, gamma, lam)
    expected_adv, expected_ret = [], []
    for s, last in zip(segments, bootstraps, strict=True):
        r, v = s.rewards.astype(np.float64), s.extras["value"].astype(np.float64)
        d = np.zeros(len(s))
        d[-1] = float(s.terminal)
        adv, ret = ref_gae(r, v, d, last, gamma, lam)
        expected_adv.append(adv)
        expected_ret.append(ret)
    assert advantages.dtype == returns.dtype == np.float32
    assert advantages.shape == (sum(len(s) for s in segments),)
    np.testing.assert_allclose(advantages, np.concatenate(expected_adv), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(returns, np.concatenate(expected_ret), rtol=1e-5, atol=1e-6)


def test_segments_gae_wants_one_bootstrap_per_segment():
    from relaax_zmq.algorithms.common.segment_returns import segments_gae

    rng = np.random.default_rng(0)
    segments = [recorded_segment(rng, 3, False, True), recorded_segment(rng, 2, True, False)]
    with pytest.raises(ValueError, match="expected 2 values, got 1"):
        segments_gae(segments, np.zeros(1), 0.99, 0.95)


def test_bootstrap_values_are_the_models_value_of_next_states_and_0_after_termination():
    from types import SimpleNamespace

    from relaax_zmq.algorithms.common.segment_returns import bootstrap_values

    class ValueOfSum(torch.nn.Module):
        def forward(self, x):
            return SimpleNamespace(value=x.sum(dim=1))

    rng = np.random.default_rng(1)
    segments = [recorded_segment(rng, 2, False, True), recorded_segment(rng, 3, True, False)]
    found = bootstrap_values(ValueOfSum(), segments, torch.device("cpu"))
    np.testing.assert_allclose(found, [segments[0].next_state.sum(), 0.0], rtol=1e-6)
