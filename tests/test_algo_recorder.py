"""The recorder turns interleaved StepBatch rows into per-session segments with the right rewards."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.algorithms.common.recorder import Recorder
from relaax_zmq.core import StepBatch

NAN = float("nan")


def batch(ids, rewards, states, terminal=None, truncated=None, exploit=None) -> StepBatch:
    n = len(ids)
    return StepBatch(
        np.array(ids, np.uint64),
        np.array(rewards, np.float32),
        np.array(states, np.float32).reshape(n, 1),
        np.array(terminal or [False] * n),
        np.array(truncated or [False] * n),
        np.array(exploit or [False] * n),
    )


def play(recorder: Recorder, b: StepBatch, actions) -> list:
    cut = recorder.step(b, b.states)
    recorder.act(b, b.states, np.array(actions), {"logp": -np.array(actions, np.float32)})
    return cut


def test_each_action_gets_the_reward_of_the_next_update_of_its_own_session() -> None:
    recorder = Recorder(3)
    recorder.open(np.array([1, 2], np.uint64), exploit=False)
    assert play(recorder, batch([1, 2], [NAN, NAN], [10, 20]), [0, 1]) == []
    assert play(recorder, batch([2], [2.0], [21]), [2]) == []  # sessions step at their own pace
    assert play(recorder, batch([1, 2], [1.0, 3.0], [11, 22]), [3, 4]) == []
    (cut,) = play(recorder, batch([2], [4.0], [23]), [5])  # session 2: 3 transitions waiting
    assert cut.session_id == 2 and len(cut) == 3
    np.testing.assert_array_equal(cut.states[:, 0], [20, 21, 22])
    np.testing.assert_array_equal(cut.actions, [1, 2, 4])
    np.testing.assert_array_equal(cut.rewards, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(cut.extras["logp"], [-1, -2, -4])
    assert not cut.episode_ended and cut.next_state[0] == 23  # bootstrap from the newest state
    assert recorder.waiting() == 1  # session 1's one transition


def test_episode_ends_cut_with_the_right_bootstrap_and_a_nan_reward_starts_afresh() -> None:
    recorder = Recorder(None)
    recorder.open(np.array([1, 2], np.uint64), exploit=False)
    play(recorder, batch([1, 2], [NAN, NAN], [10, 20]), [0, 0])
    cut = play(
        recorder,
        batch([1, 2], [1.0, 2.0], [11, 21], terminal=[True, False], truncated=[False, True]),
        [9, 9],
    )
    terminal, truncated = sorted(cut, key=lambda s: s.session_id)
    assert terminal.terminal and not terminal.truncated and terminal.next_state is None
    assert truncated.truncated and truncated.next_state[0] == 21  # the final observation
    # the ended rows' actions are discarded: the next rows start new episodes (NaN reward)
    assert play(recorder, batch([1, 2], [NAN, NAN], [12, 22]), [1, 1]) == []
    (cut,) = play(recorder, batch([1], [5.0], [13], terminal=[True]), [0])
    np.testing.assert_array_equal(cut.states[:, 0], [12])
    np.testing.assert_array_equal(cut.rewards, [5.0])


def test_exploit_sessions_and_resets_record_nothing() -> None:
    recorder = Recorder(1)
    recorder.open(np.array([7], np.uint64), exploit=True)
    recorder.open(np.array([8], np.uint64), exploit=False)
    b = batch([7, 8], [NAN, NAN], [1, 2], exploit=[True, False])
    np.testing.assert_array_equal(recorder.exploit_mask(b), [True, False])
    play(recorder, b, [0, 0])
    recorder.end_episodes(np.array([8], np.uint64))  # a client reset drops the waiting action
    assert play(recorder, batch([7, 8], [1.0, 1.0], [1, 2], exploit=[True, False]), [0, 0]) == []
    (cut,) = play(recorder, batch([8], [2.0], [3]), [0])
    assert cut.session_id == 8 and cut.rewards.tolist() == [2.0]


def test_segment_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="segment_length"):
        Recorder(0)
