"""Unrolls across episode boundaries: observations aligned with actions, rewards and done
flags where the episode ended, a truncation's bootstrap value, exploit sessions left out."""

from __future__ import annotations

import numpy as np

from relaax_zmq.algorithms.common.unrolls import LOG_PROB, VALUE, UnrollRecorder
from relaax_zmq.core import StepBatch

NAN = float("nan")


def step(recorder, sids, rewards, obs, terminal=None, truncated=None, value=0.0, version=3):
    n = len(sids)
    batch = StepBatch(
        session_ids=np.array(sids, np.uint64),
        rewards=np.array(rewards, np.float32),
        states=np.array(obs, np.float32).reshape(n, 1),
        terminal=np.array(terminal or [False] * n),
        truncated=np.array(truncated or [False] * n),
        exploit=np.zeros(n, bool),
    )
    states = batch.states
    shipped = recorder.step(batch, states)
    recorder.version = version
    actions = (np.asarray(obs) * 10).astype(np.int64)  # action = 10 x observation
    extras = {LOG_PROB: -np.asarray(obs, np.float32), VALUE: np.full(n, value, np.float32)}
    recorder.act(batch, states, actions, extras)
    return shipped


def recorder(length: int = 3, gamma: float = 0.5) -> UnrollRecorder:
    r = UnrollRecorder(length, (1,), np.float32, (), np.int64, gamma)
    r.open(np.array([1], np.uint64), exploit=False)
    return r


def test_an_unroll_spans_an_episode_end_with_the_next_episode_s_first_observation() -> None:
    r = recorder()
    assert step(r, [1], [NAN], [1]) == []
    step(r, [1], [0.1], [2])
    step(r, [1], [0.2], [3], terminal=[True])  # final observation: no action taken on it
    assert step(r, [1], [NAN], [7]) == []  # next episode's first observation
    (unroll,) = step(r, [1], [0.3], [8])
    f = unroll.fields
    assert f["obs"][:, 0].tolist() == [1, 2, 7, 8]  # T+1: the bootstrap is the 4th
    assert f["action"].tolist() == [10, 20, 70]
    assert f["behaviour_log_prob"].tolist() == [-1, -2, -7]
    assert np.allclose(f["reward"], [0.1, 0.2, 0.3])
    assert f["done"].tolist() == [0.0, 1.0, 0.0]
    assert unroll.episodes == 1 and unroll.steps == 3 and unroll.version == 3
    assert r.waiting() == 0  # the next unroll starts at observation 8


def test_a_truncated_episode_bootstraps_from_the_final_observation_s_value() -> None:
    r = recorder(length=2, gamma=0.5)
    step(r, [1], [NAN], [1])
    step(r, [1], [1.0], [2], truncated=[True], value=4.0)  # V(final observation) = 4
    assert step(r, [1], [NAN], [5]) == []
    (unroll,) = step(r, [1], [0.5], [6])
    assert unroll.fields["reward"].tolist() == [1.0 + 0.5 * 4.0, 0.5]
    assert unroll.fields["done"].tolist() == [1.0, 0.0]
    assert unroll.fields["obs"][:, 0].tolist() == [1, 5, 6]
    step(r, [1], [0.25], [7], terminal=[True], value=100.0)  # terminal: no value added
    step(r, [1], [NAN], [8])
    (unroll,) = step(r, [1], [1.0], [9])
    assert unroll.fields["reward"].tolist() == [0.25, 1.0]


def test_exploit_sessions_and_unknown_sessions_record_nothing() -> None:
    r = recorder(length=1)
    r.open(np.array([2], np.uint64), exploit=True)
    step(r, [1, 2, 9], [NAN, NAN, NAN], [1, 1, 1])
    shipped = step(r, [1, 2, 9], [1.0, 1.0, 1.0], [2, 2, 2])
    assert len(shipped) == 1 and shipped[0].fields["obs"][:, 0].tolist() == [1, 2]
    assert set(r.sessions) == {1}


def test_an_episode_cut_by_the_exchange_starts_the_unroll_again() -> None:
    r = recorder(length=3)
    step(r, [1], [NAN], [1])
    step(r, [1], [1.0], [2])
    assert r.waiting() == 1
    r.end_episodes(np.array([1], np.uint64))
    assert r.waiting() == 0
    step(r, [1], [NAN], [5])
    step(r, [1], [1.0], [6])
    step(r, [1], [1.0], [7])
    (unroll,) = step(r, [1], [1.0], [8])
    assert unroll.fields["obs"][:, 0].tolist() == [5, 6, 7, 8]
