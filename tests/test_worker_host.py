"""SessionHost: batching, episode starts, restarts, resets, metrics and refusals, no sockets."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.core import StepBatch
from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import Limits, decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, Flag, MessageType, Role
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.testing.linear_policy.agent import LinearPolicyAgent
from relaax_zmq.worker.host import Request, SessionHost


class RecordingAgent(LinearPolicyAgent):
    """The linear policy, keeping every batch it acted on and every episode end."""

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config or {"actions": 3})
        self.batches: list[StepBatch] = []
        self.ended: list[list[int]] = []
        self.fail: Exception | None = None

    def act(self, batch: StepBatch) -> np.ndarray:
        if self.fail is not None:
            raise self.fail
        self.batches.append(batch)
        return super().act(batch)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        self.ended.append(session_ids.tolist())
        super().end_episodes(session_ids)


def states(n: int, size: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, size)).astype(np.float32)


def expected_actions(agent: LinearPolicyAgent, obs: np.ndarray) -> np.ndarray:
    assert agent.weights is not None
    return (obs.reshape(len(obs), -1) @ agent.weights).argmax(axis=1)


def handle(host: SessionHost, *msgs) -> list:
    return [r.message for r in host.handle([Request(i, m) for i, m in enumerate(msgs)])]


def error_of(reply) -> tuple[int, str]:
    assert reply.type == MessageType.ERROR, reply
    code, text, _ = messages.read_error(reply)
    return code, text


@pytest.fixture
def agent() -> RecordingAgent:
    return RecordingAgent()


@pytest.fixture
def host(agent: RecordingAgent) -> SessionHost:
    return SessionHost(agent)


def test_blocks_of_different_sizes_are_stacked_into_one_act_call(host, agent):
    sizes = {10: 1, 20: 3, 30: 2}
    for sid, n in sizes.items():
        host.assign(sid, n)
    obs = {sid: states(n, seed=sid) for sid, n in sizes.items()}
    msgs = [
        messages.update(sid, reward=np.ones(n), state=obs[sid], sequence=sid + 1)
        for sid, n in sizes.items()
    ]
    replies = host.handle([Request(f"client-{m.session_id}", m) for m in msgs])

    assert len(agent.batches) == 1
    batch = agent.batches[0]
    assert len(batch) == 6
    assert batch.session_ids.tolist() == [10, 20, 21, 22, 30, 31]
    assert batch.states.shape == (6, 4)
    assert batch.exploit.tolist() == [False] * 6
    for reply, msg in zip(replies, msgs, strict=True):
        assert reply.key == f"client-{msg.session_id}"
        action = reply.message
        assert action.type == MessageType.ACTION
        assert action.sequence == msg.sequence
        assert (action.session_id, action.session_count) == (msg.session_id, msg.session_count)
        assert not action.flags & Flag.RESTART
        got = action.tensors[Role.ACTION]
        assert got.shape == (msg.session_count,)
        np.testing.assert_array_equal(got, expected_actions(agent, obs[msg.session_id]))
    assert host.counters.batches == 1 and host.counters.steps == 6


def test_groups_by_observation_shape_and_dtype(host, agent):
    host.assign(1, 2)
    host.assign(2, 1)
    host.assign(3, 1)
    replies = handle(
        host,
        messages.update(1, state=states(2)),
        messages.update(2, state=states(1).astype(np.float64)),
        messages.update(3, state=states(1)),
    )
    assert [len(b) for b in agent.batches] == [3, 1]
    assert agent.batches[0].session_ids.tolist() == [1, 2, 3]
    assert all(r.type == MessageType.ACTION for r in replies)


def test_first_step_rewards_are_nan_and_episode_ends_per_session(host, agent):
    host.assign(1, 2)
    host.assign(5, 3)
    ends = np.array([True, False, False])
    handle(
        host,
        messages.update(1, state=states(2)),
        messages.update(5, reward=[1.0, 2.0, 3.0], state=states(3), terminal=ends),
    )
    batch = agent.batches[0]
    assert np.isnan(batch.rewards[:2]).all()
    assert batch.rewards[2:].tolist() == [1.0, 2.0, 3.0]
    assert batch.rewards.dtype == np.float32
    assert batch.terminal.tolist() == [False, False, True, False, False]
    assert not batch.truncated.any()


def test_header_episode_flags_apply_to_the_whole_block(host, agent):
    host.assign(1, 2, exploit=True)
    handle(host, messages.update(1, reward=[0.5, 0.5], state=states(2), truncated=True))
    batch = agent.batches[0]
    assert batch.truncated.tolist() == [True, True]
    assert batch.exploit.tolist() == [True, True]


def test_update_without_state_gets_a_batch_without_states(host, agent):
    host.assign(1, 1)
    (reply,) = handle(host, messages.update(1, reward=[1.0], terminal=True, session_count=1))
    assert agent.batches[0].states is None
    assert reply.type == MessageType.ACTION


def test_restart_assign_flags_the_first_reply_and_starts_a_new_episode(host, agent):
    host.assign(7, 2, restart=True)
    obs = states(2)
    first = handle(host, messages.update(7, reward=[1.0, 1.0], state=obs, sequence=3))[0]
    assert first.type == MessageType.ACTION and first.flags & Flag.RESTART
    assert first.sequence == 3
    assert np.isnan(agent.batches[0].rewards).all()  # the agent sees the start of an episode
    assert agent.ended == [[7, 8]]  # the client abandons that episode
    second = handle(host, messages.update(7, state=obs))[0]
    assert not second.flags & Flag.RESTART


def test_restart_flags_every_reply_of_the_resent_drain_only(host, agent):
    host.assign(7, 1, restart=True)
    host.assign(8, 1)
    replies = handle(
        host,
        messages.update(7, reward=[1.0], state=states(1), sequence=1),
        messages.update(8, reward=[1.0], state=states(1), sequence=2),
        messages.update(7, reward=[1.0], state=states(1), sequence=3),
    )
    assert [bool(r.flags & Flag.RESTART) for r in replies] == [True, False, True]
    first, second = agent.batches
    assert first.session_ids.tolist() == [7, 8] and second.session_ids.tolist() == [7]
    assert np.isnan(first.rewards[0]) and first.rewards[1] == 1.0 and np.isnan(second.rewards[0])
    later = handle(host, messages.update(7, reward=[1.0], state=states(1)))[0]
    assert not later.flags & Flag.RESTART and agent.batches[-1].rewards.tolist() == [1.0]


def test_restart_flag_goes_to_a_reset_when_that_comes_first(host, agent):
    host.assign(7, 1, restart=True)
    reply = handle(host, messages.simple(MessageType.RESET, 7, 1, sequence=9))[0]
    assert reply.type == MessageType.DONE and reply.flags & Flag.RESTART and reply.sequence == 9


def test_reassign_with_restart_ends_episodes_of_a_live_block(host, agent):
    host.assign(7, 1)
    host.assign(7, 1, restart=True)
    assert agent.ended == [[7]]
    assert handle(host, messages.update(7, state=states(1)))[0].flags & Flag.RESTART


def test_reset_ends_the_blocks_episodes(host, agent):
    host.assign(40, 3)
    reply = handle(host, messages.simple(MessageType.RESET, 40, 3, sequence=12))[0]
    assert reply.type == MessageType.DONE
    assert (reply.sequence, reply.session_id, reply.session_count) == (12, 40, 3)
    assert agent.ended == [[40, 41, 42]]


def test_restart_command_ends_episodes_without_flagging_replies(host, agent):
    host.assign(40, 2)
    assert host.restart(40)
    assert not host.restart(99)
    assert agent.ended == [[40, 41]]
    assert not handle(host, messages.update(40, state=states(2)))[0].flags


def test_metrics_keep_latest_values_and_counts(host):
    seen = []
    host.metrics_sink = lambda sid, scalars, hists: seen.append((sid, scalars))
    host.assign(3, 1)
    first = messages.metrics(3, {"loss": 1.5, "reward": 2.0}, {"q": [1.0, 2.0, 3.0]}, sequence=4)
    second = messages.metrics(3, {"loss": 0.5})
    replies = handle(host, first, second)
    assert [r.type for r in replies] == [MessageType.DONE, MessageType.DONE]
    assert replies[0].sequence == 4
    assert (host.scalars["loss"].last, host.scalars["loss"].count) == (0.5, 2)
    assert (host.scalars["reward"].last, host.scalars["reward"].count) == (2.0, 1)
    np.testing.assert_array_equal(host.histograms["q"].last, [1.0, 2.0, 3.0])
    assert host.histograms["q"].count == 1
    assert seen[0] == (3, {"loss": 1.5, "reward": 2.0})


def test_inconsistent_metrics_are_malformed(host):
    host.assign(3, 1)
    msg = messages.metrics(3, {"a": 1.0})
    msg.tensors[Role.METRIC_VALUES] = np.zeros(2)
    code, text = error_of(handle(host, msg)[0])
    assert code == ErrorCode.MALFORMED and "metric_values" in text


def test_unknown_session_and_mismatched_count(host, agent):
    host.assign(10, 2)
    unknown, mismatched = handle(
        host,
        messages.update(11, state=states(1), sequence=1),
        messages.update(10, state=states(3), sequence=2),
    )
    code, _ = error_of(unknown)
    assert code == ErrorCode.UNKNOWN_SESSION and unknown.sequence == 1
    code, text = error_of(mismatched)
    assert code == ErrorCode.MALFORMED and "session_count" in text and mismatched.sequence == 2
    assert agent.batches == []


def test_types_the_worker_does_not_serve_are_refused(host):
    code, _ = error_of(handle(host, messages.init(1))[0])
    assert code == ErrorCode.UNKNOWN_TYPE


def test_wrong_observation_size_is_malformed_while_others_get_actions(host, agent):
    host.assign(1, 1)
    host.assign(2, 2)
    host.assign(3, 1)
    handle(host, messages.update(1, state=states(1)))  # fixes the policy's input size: 4
    good, bad, good2 = handle(
        host,
        messages.update(1, state=states(1)),
        messages.update(2, state=states(2, size=5), sequence=8),
        messages.update(3, state=states(1)),
    )
    assert good.type == good2.type == MessageType.ACTION
    code, text = error_of(bad)
    assert code == ErrorCode.MALFORMED and "4 values" in text and bad.sequence == 8


def test_agent_failure_is_internal_and_the_host_keeps_serving(host, agent):
    host.assign(1, 1)
    agent.fail = RuntimeError("boom")
    code, text = error_of(handle(host, messages.update(1, state=states(1)))[0])
    assert code == ErrorCode.INTERNAL and "RuntimeError: boom" in text
    agent.fail = None
    assert handle(host, messages.update(1, state=states(1)))[0].type == MessageType.ACTION
    assert host.counters.errors == 1


def test_agent_returning_the_wrong_number_of_actions_is_internal(host, agent):
    host.assign(1, 2)
    agent.act = lambda batch: np.zeros(1)
    code, text = error_of(handle(host, messages.update(1, state=states(2)))[0])
    assert code == ErrorCode.INTERNAL and "shape (1,)" in text


def test_two_updates_of_one_block_in_a_drain_run_in_order(host, agent):
    host.assign(1, 1)
    host.assign(2, 1)
    replies = handle(
        host,
        messages.update(1, state=states(1, seed=1), sequence=1),
        messages.update(2, state=states(1, seed=2), sequence=2),
        messages.update(1, reward=[1.0], state=states(1, seed=3), sequence=3),
    )
    assert [b.session_ids.tolist() for b in agent.batches] == [[1, 2], [1]]
    assert [r.sequence for r in replies] == [1, 2, 3]


def test_reset_after_a_pending_update_of_its_block_runs_the_update_first(host, agent):
    host.assign(1, 1)
    calls = []
    agent.act = lambda batch: calls.append("act") or np.zeros(len(batch), np.int64)
    agent.end_episodes = lambda ids: calls.append("end")
    handle(host, messages.update(1, state=states(1)), messages.simple(MessageType.RESET, 1, 1))
    assert calls == ["act", "end"]


def test_max_batch_chunks_act_calls_and_reassembles_actions(agent):
    host = SessionHost(agent, max_batch=2)
    host.assign(1, 3)
    host.assign(9, 1)
    obs1, obs9 = states(3, seed=1), states(1, seed=9)
    r1, r9 = handle(host, messages.update(1, state=obs1), messages.update(9, state=obs9))
    assert [len(b) for b in agent.batches] == [2, 2]
    np.testing.assert_array_equal(r1.tensors[Role.ACTION], expected_actions(agent, obs1))
    np.testing.assert_array_equal(r9.tensors[Role.ACTION], expected_actions(agent, obs9))


def test_release_forgets_the_block(host, agent):
    host.assign(1, 2)
    assert host.sessions == 2 and agent.stats()["sessions"] == 2
    assert host.release(1)
    assert not host.release(1)
    assert host.sessions == 0 and agent.stats()["sessions"] == 0
    code, _ = error_of(handle(host, messages.update(1, state=states(2)))[0])
    assert code == ErrorCode.UNKNOWN_SESSION


def test_stats_carry_host_counters_and_agent_stats(host):
    host.assign(1, 1)
    handle(host, messages.update(1, state=states(1)))
    stats = host.stats()
    assert stats["blocks"] == 1 and stats["sessions"] == 1 and stats["batches"] == 1
    assert stats["agent"]["steps"] == 1.0


def test_decode_errors_map_to_malformed_too_large_or_version():
    limits = Limits(max_sessions=4)
    big = encode(messages.update(1, state=np.zeros((8, 1), np.float32), sequence=77))
    with pytest.raises(ProtocolError) as info:
        decode(big, limits)
    reply = refusal(info.value, big, limits)
    code, text = error_of(reply)
    assert code == ErrorCode.TOO_LARGE and "session_count" in text and reply.sequence == 77

    frames = encode(messages.update(1, state=np.zeros((1, 3), np.float32), sequence=5))
    frames[2] = b"\0" * 4  # payload of the wrong size
    with pytest.raises(ProtocolError) as info:
        decode(frames)
    reply = refusal(info.value, frames, limits)
    code, text = error_of(reply)
    assert code == ErrorCode.MALFORMED and "payload" in text and reply.sequence == 5

    head = bytearray(bytes(frames[0]))
    head[4] = 2
    with pytest.raises(ProtocolError) as info:
        decode([bytes(head)])
    code, _ = error_of(refusal(info.value, [bytes(head)], limits))
    assert code == ErrorCode.UNSUPPORTED_VERSION
