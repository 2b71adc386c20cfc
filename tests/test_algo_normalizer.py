"""normalizer.py: running statistics against numpy, the distributed round, reward scaling."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.algorithms.common.normalizer import RewardScaler, RunningMeanStd


def batches(rng, shape, sizes, loc=0.0, scale=1.0):
    return [rng.normal(loc, scale, size=(n, *shape)) for n in sizes]


def test_batches_match_numpy():
    rng = np.random.default_rng(0)
    data = batches(rng, (3, 2), [5, 1, 17, 4], loc=2.0, scale=3.0)
    rms = RunningMeanStd((3, 2))
    for batch in data:
        rms.update(batch)
    everything = np.concatenate(data)
    assert rms.count == len(everything)
    np.testing.assert_allclose(rms.mean, everything.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, everything.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(rms.std, np.sqrt(everything.var(axis=0) + 1e-8), rtol=1e-10)


def test_large_offset_small_variance_is_accurate():
    rng = np.random.default_rng(1)
    data = batches(rng, (4,), [100] * 20, loc=1e4, scale=0.1)
    plain, shifted = RunningMeanStd(4), RunningMeanStd(4, shift=1e4)
    for batch in data:
        plain.update(batch)
        shifted.update(batch)
    want = np.concatenate(data).var(axis=0)
    # float64 sums of squares: relative error about eps * mean^2 / var * log(n), ~1e-6 here
    np.testing.assert_allclose(plain.var, want, rtol=1e-4)
    np.testing.assert_allclose(shifted.var, want, rtol=1e-12)
    np.testing.assert_allclose(shifted.mean, np.concatenate(data).mean(axis=0), rtol=1e-14)


def test_variance_never_negative_and_std_positive():
    rms = RunningMeanStd(2)
    assert np.all(rms.var == 0) and np.all(rms.mean == 0) and rms.count == 0
    for _ in range(50):
        rms.update(np.full((7, 2), 12345.678901))
    assert np.all(rms.var >= 0)
    assert np.all(rms.std >= np.sqrt(1e-8))
    out = rms.normalize(np.full((3, 2), 12345.678901))
    assert np.all(np.abs(out) < 1e-3)


def test_normalize_clips_and_returns_float32():
    rms = RunningMeanStd(())
    rms.update(np.array([-1.0, 1.0]))  # mean 0, var 1
    out = rms.normalize(np.array([0.5, 100.0, -100.0]), clip=5.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.5, 5.0, -5.0], rtol=1e-6)
    np.testing.assert_allclose(rms.normalize(np.array([100.0]), clip=None), [100.0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., \*\(3,\)\), got \(2,\)"):
        RunningMeanStd(3).normalize(np.zeros(2))


def test_vector_layout_and_take_delta_resets():
    assert RunningMeanStd.vector_size((3, 2)) == 13
    assert RunningMeanStd.vector_size(()) == 3
    assert RunningMeanStd.vector_size(4) == 9
    rms = RunningMeanStd(2)
    rms.update(np.array([[1.0, 2.0], [3.0, 4.0]]))
    delta = rms.take_delta()
    assert delta.dtype == np.float64
    np.testing.assert_array_equal(delta, [2.0, 4.0, 6.0, 10.0, 20.0])
    np.testing.assert_array_equal(rms.take_delta(), np.zeros(5))
    np.testing.assert_allclose(rms.mean, [2.0, 3.0])  # the taken delta still counts locally


def test_distributed_round_matches_numpy_on_all_data():
    rng = np.random.default_rng(2)
    workers = [RunningMeanStd((2,)) for _ in range(3)]
    server = np.zeros(RunningMeanStd.vector_size((2,)))
    seen = []
    for _ in range(4):  # rounds: update, send deltas, the server adds, everyone installs
        for worker in workers:
            for batch in batches(rng, (2,), rng.integers(1, 6, size=2), loc=-3.0, scale=2.0):
                worker.update(batch)
                seen.append(batch)
            server += worker.take_delta()
        for worker in workers:
            worker.apply_global(server)
    everything = np.concatenate(seen)
    for worker in workers:
        assert worker.count == len(everything)
        np.testing.assert_allclose(worker.mean, everything.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(worker.var, everything.var(axis=0), rtol=1e-10)
    extra = np.array([[100.0, -100.0]])
    workers[0].update(extra)  # an un-taken local update counts on top of the global totals
    both = np.concatenate([everything, extra])
    np.testing.assert_allclose(workers[0].mean, both.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(workers[1].mean, everything.mean(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match=r"vector: expected shape \(5,\), got \(4,\)"):
        workers[0].apply_global(np.zeros(4))


def test_update_rejects_bad_shapes():
    rms = RunningMeanStd((3,))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, \*\(3,\)\), got \(3,\)"):
        rms.update(np.zeros(3))
    with pytest.raises(ValueError, match=r"got \(2, 4\)"):
        rms.update(np.zeros((2, 4)))


def test_state_round_trip():
    rng = np.random.default_rng(3)
    rms = RunningMeanStd((2,), shift=[1.0, 2.0])
    rms.update(rng.normal(size=(5, 2)))
    rms.take_delta()
    rms.update(rng.normal(size=(3, 2)))
    copy = RunningMeanStd((2,))
    copy.load_state(rms.state())
    np.testing.assert_array_equal(copy.mean, rms.mean)
    np.testing.assert_array_equal(copy.var, rms.var)
    np.testing.assert_array_equal(copy.take_delta(), rms.take_delta())
    with pytest.raises(ValueError, match=r"state shape: expected \(3,\), got \(2,\)"):
        RunningMeanStd(3).load_state(rms.state())


# ---------------------------------------------------------------- reward scaling


def ref_scale(steps, gamma, eps=1e-8, clip=10.0):
    """VecNormalize's reward path, step by step, sessions interleaved as given."""
    returns, history, out = {}, [], []
    for session, reward, done in steps:
        ret = gamma * returns.get(session, 0.0) + reward
        history.append(ret)
        out.append(np.clip(reward / np.sqrt(np.var(history) + eps), -clip, clip))
        returns[session] = 0.0 if done else ret
    return out


def test_reward_scaler_matches_step_by_step_reference():
    rng = np.random.default_rng(4)
    scaler = RewardScaler(gamma=0.9)
    steps, got = [], []
    for _ in range(6):
        for session in ("a", "b"):
            rewards = rng.normal(1.0, 2.0, size=4)
            dones = rng.random(4) < 0.3
            got.extend(scaler.scale(session, rewards, dones))
            steps.extend((session, r, d) for r, d in zip(rewards, dones, strict=True))
    np.testing.assert_allclose(got, ref_scale(steps, 0.9), rtol=1e-5)


def test_reward_scaler_resets_at_episode_end_and_per_session():
    scaler = RewardScaler(gamma=1.0, clip=None)
    scaler.scale("a", [1.0, 1.0], [False, True])
    scaler.scale("b", [1.0], [False])
    scaler.scale("a", [1.0], [False])
    # returns seen: a: 1, 2 (end), b: 1, a restarts at 1
    np.testing.assert_allclose(scaler.rms.mean, 1.25)
    scaler.reset("b")
    scaler.scale("b", [3.0], [False])
    np.testing.assert_allclose(scaler.rms.mean, (1 + 2 + 1 + 1 + 3) / 5)
    out = RewardScaler(0.99, clip=2.0).scale(0, [1.0, 1000.0], [False, False])
    assert out.dtype == np.float32 and out[1] == 2.0
    with pytest.raises(ValueError, match=r"dones: expected shape \(2,\), got \(3,\)"):
        scaler.scale("a", [1.0, 2.0], [False] * 3)


def test_reward_scaler_scale_segment_ends_the_episode_only_at_its_last_step():
    by_segment, by_steps = RewardScaler(gamma=0.5, clip=None), RewardScaler(gamma=0.5, clip=None)
    first = by_segment.scale_segment("a", [1.0, 2.0], episode_ended=True)
    second = by_segment.scale_segment("a", [4.0], episode_ended=False)
    expected = by_steps.scale("a", [1.0, 2.0, 4.0], [False, True, False])
    np.testing.assert_allclose(np.concatenate([first, second]), expected, rtol=1e-6)
    assert by_segment.scale_segment("b", np.zeros(0), episode_ended=True).shape == (0,)


def test_reward_scaler_scale_rows_keeps_each_session_s_return_as_scale_does():
    rows, by_scale = RewardScaler(gamma=0.9, clip=None), RewardScaler(gamma=0.9, clip=None)
    rng = np.random.default_rng(7)
    for _ in range(5):
        rewards, dones = rng.normal(0.0, 3.0, size=3), rng.random(3) < 0.4
        got = rows.scale_rows(["a", "b", "c"], rewards, dones)
        for i, session in enumerate("abc"):  # the same returns, folded one at a time
            by_scale.scale(session, rewards[i : i + 1], dones[i : i + 1])
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, rewards / float(rows.rms.std), rtol=1e-5)
        assert rows._returns == pytest.approx(by_scale._returns)
    np.testing.assert_allclose(rows.rms.mean, by_scale.rms.mean, rtol=1e-9)
    np.testing.assert_allclose(rows.rms.var, by_scale.rms.var, rtol=1e-9)
    assert rows.scale_rows([], [], []).shape == (0,)
    with pytest.raises(ValueError, match="sessions and dones: expected 2 each, got 1 and 2"):
        rows.scale_rows(["a"], [1.0, 2.0], [False, False])
