"""SessionHost's in-process path: the broker's part (init, close, heartbeat) on the broker's
session table, and the frames path."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, Flag, MessageType, Role
from relaax_zmq.testing.linear_policy.agent import LinearPolicyAgent
from relaax_zmq.worker.host import SessionHost


class EndingAgent(LinearPolicyAgent):
    """The linear policy, keeping every episode end."""

    def __init__(self) -> None:
        super().__init__({"actions": 3})
        self.ended: list[list[int]] = []

    def end_episodes(self, session_ids: np.ndarray) -> None:
        self.ended.append(session_ids.tolist())
        super().end_episodes(session_ids)


def states(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)


def expected_actions(agent: LinearPolicyAgent, obs: np.ndarray) -> np.ndarray:
    assert agent.weights is not None
    return (obs @ agent.weights).argmax(axis=1)


def error_of(reply) -> tuple[int, str]:
    assert reply.type == MessageType.ERROR, reply
    code, text, _ = messages.read_error(reply)
    return code, text


@pytest.fixture
def agent() -> EndingAgent:
    return EndingAgent()


@pytest.fixture
def host(agent: EndingAgent) -> SessionHost:
    return SessionHost(agent)


def test_in_process_path_serves_a_whole_conversation(host, agent):
    ready = host.handle_one(messages.init(2, sequence=1))
    assert ready.type == MessageType.READY and ready.session_count == 2 and ready.session_id > 0
    sid = ready.session_id
    obs = states(2)
    action = host.handle_one(messages.update(sid, state=obs, sequence=2))
    assert action.type == MessageType.ACTION and action.sequence == 2
    np.testing.assert_array_equal(action.tensors[Role.ACTION], expected_actions(agent, obs))
    beat = host.handle_one(messages.simple(MessageType.HEARTBEAT, sid, 2, sequence=3))
    assert beat.type == MessageType.HEARTBEAT and beat.sequence == 3
    resumed = host.handle_one(messages.init(2, session_id=sid))
    assert resumed.session_id == sid and agent.ended == [[sid, sid + 1]]
    done = host.handle_one(messages.simple(MessageType.CLOSE, sid, 2, sequence=4))
    assert done.type == MessageType.DONE and host.sessions == 0
    code, _ = error_of(host.handle_one(messages.update(sid, state=obs)))
    assert code == ErrorCode.UNKNOWN_SESSION


def test_open_block_gives_distinct_random_blocks(host):
    a, b = host.open_block(4), host.open_block(1, exploit=True)
    assert a != b and 0 < a < 2**62 and 0 < b < 2**62
    assert host.blocks[b].exploit and host.sessions == 5


def test_in_process_frames_path_encodes_and_refuses_garbage(host):
    sid = host.open_block(1)
    reply = decode(host.handle_frames(encode(messages.update(sid, state=states(1), sequence=5))))
    assert reply.type == MessageType.ACTION and reply.sequence == 5
    code, text = error_of(decode(host.handle_frames([b"junk"])))
    assert code == ErrorCode.MALFORMED and text.startswith("header")


def test_in_process_blocks_are_owned_by_their_connection_as_on_the_broker(host, agent):
    sid = host.handle_one(messages.init(1), client=b"a").session_id
    assert host.table.get(sid).client == b"a"  # the broker's session table holds the block
    for mtype in (MessageType.HEARTBEAT, MessageType.CLOSE):
        code, text = error_of(host.handle_one(messages.simple(mtype, sid, 1), client=b"b"))
        assert code == ErrorCode.UNKNOWN_SESSION and "init again" in text
    assert host.sessions == 1
    resumed = host.handle_one(messages.init(1, session_id=sid), client=b"b")
    assert resumed.session_id == sid and host.table.get(sid).client == b"b"
    code, _ = error_of(host.handle_one(messages.simple(MessageType.CLOSE, sid, 1), client=b"a"))
    assert code == ErrorCode.UNKNOWN_SESSION
    done = host.handle_one(messages.simple(MessageType.CLOSE, sid, 1), client=b"b")
    assert done.type == MessageType.DONE and host.sessions == 0 and len(host.table) == 0


def test_in_process_init_of_an_unknown_block_opens_a_new_one(host):
    ready = host.handle_one(messages.init(2, session_id=12345, exploit=True))
    assert ready.session_id != 12345 and ready.flags & Flag.EXPLOIT
    assert host.blocks[ready.session_id].exploit and host.table.get(ready.session_id).count == 2
