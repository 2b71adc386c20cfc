"""AgentProxy and VectorAgentProxy against a fake RLX server over tcp loopback."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from fake_server import FakeServer

from relaax_zmq.client import AgentProxy, Backoff, VectorAgentProxy
from relaax_zmq.config import parse_config
from relaax_zmq.errors import AgentError, EpisodeRestart
from relaax_zmq.protocol import ErrorCode, Flag, Message, MessageType, Role, messages

FAST = {"request_timeout": 2.0, "retry_deadline": 2.0}


def proxy(server: FakeServer, **options) -> AgentProxy:
    return AgentProxy(server.endpoint, **(FAST | options))


def test_init_gets_a_block(server: FakeServer) -> None:
    with proxy(server) as agent:
        sid = agent.init(exploit=True)
        assert sid == agent.session_id == 1000
    (init,) = server.messages(MessageType.INIT)
    assert (init.session_id, init.session_count) == (0, 1)
    assert init.flags == Flag.EXPLOIT


def test_update_sends_reward_and_state_and_returns_the_sessions_action(server: FakeServer) -> None:
    server.action_fn = lambda m: np.full((m.session_count, 2), 0.5, np.float32)
    with proxy(server) as agent:
        agent.init()
        first = agent.update(state=np.arange(4, dtype=np.float32))
        second = agent.update(reward=1.5, state=np.arange(4, dtype=np.float32))
    assert first.shape == (2,) and first.dtype == np.float32
    np.testing.assert_array_equal(second, [0.5, 0.5])
    one, two = server.messages(MessageType.UPDATE)
    assert Role.REWARD not in one.tensors
    assert one.tensors[Role.STATE].shape == (1, 4)
    assert two.tensors[Role.REWARD].dtype == np.float32
    np.testing.assert_array_equal(two.tensors[Role.REWARD], np.float32([1.5]))
    assert (two.session_id, two.session_count, two.flags) == (1000, 1, 0)


def test_discrete_action_is_a_scalar_and_update_inits_lazily(server: FakeServer) -> None:
    server.action_fn = lambda m: np.full(m.session_count, 3, np.int64)
    with proxy(server) as agent:
        action = agent.update(state=[1.0])
    assert isinstance(action, np.int64) and action == 3
    assert len(server.messages(MessageType.INIT)) == 1


def test_terminal_update_flags_the_header_and_flushes_metrics_once(server: FakeServer) -> None:
    with proxy(server) as agent:
        agent.init()
        agent.update(state=[0.0])
        agent.metrics.scalar("episode_reward", 3.0)
        agent.metrics.scalar("loss", 0.25)
        agent.metrics.histogram("q", [1.0, 2.0])
        agent.metrics.histogram("q", [3.0])
        assert server.messages(MessageType.METRICS) == []
        agent.update(reward=1.0, state=[0.0], terminal=True)
    updates = server.messages(MessageType.UPDATE)
    assert updates[-1].flags == Flag.TERMINAL
    (metrics,) = server.messages(MessageType.METRICS)
    scalars, histograms = messages.read_metrics(metrics)
    latency = scalars.pop("action_latency_client_ms")  # the mean of the two updates
    assert scalars == {"episode_reward": 3.0, "loss": 0.25}
    assert 0.0 < latency < 5000.0
    np.testing.assert_array_equal(histograms["q"], [1.0, 2.0, 3.0])
    types = [m.type for m in server.messages()]
    assert types.index(MessageType.METRICS) > types.index(MessageType.UPDATE)


def test_means_are_averaged_into_one_scalar_per_flush(server: FakeServer) -> None:
    with proxy(server) as agent:
        agent.init()
        for value in (1.0, 2.0, 6.0):
            agent.metrics.mean("td_error", value)
        agent.metrics.flush()
        agent.metrics.mean("td_error", 5.0)
        agent.metrics.flush()
    first, second = (messages.read_metrics(m)[0] for m in server.messages(MessageType.METRICS))
    assert first == {"td_error": 3.0} and second == {"td_error": 5.0}


def test_flush_and_reset_send_buffered_metrics(server: FakeServer) -> None:
    with proxy(server) as agent:
        agent.init()
        agent.metrics.flush()  # nothing waiting: nothing sent
        assert server.messages(MessageType.METRICS) == []
        agent.metrics.scalar("a", 1.0)
        agent.metrics.flush()
        agent.metrics.scalar("b", 2.0)
        agent.reset()
    first, second = server.messages(MessageType.METRICS)
    assert messages.read_metrics(first)[0] == {"a": 1.0}
    assert messages.read_metrics(second)[0] == {"b": 2.0}
    assert len(server.messages(MessageType.RESET)) == 1


def test_disconnect_sends_close_without_waiting(server: FakeServer) -> None:
    server.handler = lambda i, m: None if m.type == MessageType.CLOSE else server.default(i, m)
    agent = proxy(server)
    agent.init()
    start = time.monotonic()
    agent.disconnect()
    assert time.monotonic() - start < 0.5
    assert agent.session_id is None
    assert server.wait_for(lambda: len(server.messages(MessageType.CLOSE)) == 1)
    assert server.messages(MessageType.CLOSE)[0].session_id == 1000


def test_error_reply_raises_agent_error_with_the_servers_text(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE:
            return messages.error(ErrorCode.INTERNAL, "agent exploded")
        return server.default(identity, msg)

    server.handler = handler
    with proxy(server) as agent:
        agent.init()
        with pytest.raises(AgentError) as info:
            agent.update(state=[0.0])
    assert info.value.code == ErrorCode.INTERNAL
    assert info.value.text == "agent exploded"
    assert "INTERNAL: agent exploded" in str(info.value)


def test_restart_flag_raises_episode_restart_and_keeps_the_block(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE and len(server.messages(MessageType.UPDATE)) == 2:
            return messages.action(msg.session_id, [0], restart=True)
        return server.default(identity, msg)

    server.handler = handler
    with proxy(server) as agent:
        agent.init()
        agent.update(state=[0.0])
        with pytest.raises(EpisodeRestart):
            agent.update(reward=1.0, state=[0.0])
        assert agent.session_id == 1000
        agent.update(state=[0.0])
    assert len(server.messages(MessageType.INIT)) == 1


@pytest.mark.parametrize(
    "error",
    [
        messages.error(ErrorCode.UNKNOWN_SESSION, "no such session"),
        messages.error(ErrorCode.BUSY, "no worker left", restart=True),
    ],
    ids=["unknown-session", "busy-restart"],
)
def test_lost_block_is_reopened_then_episode_restarts(server: FakeServer, error: Message) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE and len(server.messages(MessageType.UPDATE)) == 1:
            return error
        return server.default(identity, msg)

    server.handler = handler
    with proxy(server) as agent:
        agent.init(exploit=True)
        with pytest.raises(EpisodeRestart, match="no such session|no worker left"):
            agent.update(state=[0.0])
        assert agent.session_id == 2000
        agent.update(state=[0.0])
    first, second = server.messages(MessageType.INIT)
    assert second.session_id == 0  # a new block, not a resume
    assert second.flags == Flag.EXPLOIT  # in the same mode
    assert server.messages(MessageType.UPDATE)[-1].session_id == 2000


class TopRng(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_busy_init_is_retried_with_growing_jittered_delays(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.INIT and len(server.messages(MessageType.INIT)) <= 4:
            return messages.error(ErrorCode.BUSY, "low memory")
        return server.default(identity, msg)

    server.handler = handler
    slept: list[float] = []
    backoff = Backoff(0.1, 0.3, rng=TopRng(), sleep=slept.append)
    with proxy(server, backoff=backoff) as agent:
        assert agent.init() == 1000
    assert len(server.messages(MessageType.INIT)) == 5
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.3])

    slept.clear()
    server.received.clear()
    jittered = Backoff(0.1, 0.3, rng=random.Random(3), sleep=slept.append)
    with proxy(server, backoff=jittered) as agent:
        agent.init()
    for delay, nominal in zip(slept, [0.1, 0.2, 0.3, 0.3], strict=True):
        assert nominal / 2 <= delay <= nominal


def test_busy_init_gives_up_at_the_deadline(server: FakeServer) -> None:
    server.handler = lambda i, m: messages.error(ErrorCode.BUSY, "no worker has room")
    with proxy(server, retry_deadline=0.3, backoff_initial=0.02, backoff_max=0.05) as agent:
        start = time.monotonic()
        with pytest.raises(AgentError) as info:
            agent.init()
    assert info.value.code == ErrorCode.BUSY and info.value.text == "no worker has room"
    assert 0.3 <= time.monotonic() - start < 1.5
    assert len(server.messages(MessageType.INIT)) >= 4


def test_other_init_errors_are_not_retried(server: FakeServer) -> None:
    server.handler = lambda i, m: messages.error(ErrorCode.AUTH, "bad key")
    with proxy(server) as agent, pytest.raises(AgentError, match="AUTH: bad key"):
        agent.init()
    assert len(server.messages(MessageType.INIT)) == 1


def test_timeout_reconnects_on_a_new_socket_and_resumes_the_block(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE and len(server.messages(MessageType.UPDATE)) == 2:
            return None  # never answered
        return server.default(identity, msg)

    server.handler = handler
    with proxy(server, request_timeout=0.2) as agent:
        sid = agent.init()
        agent.update(state=[0.0])
        start = time.monotonic()
        with pytest.raises(EpisodeRestart, match="no reply"):
            agent.update(reward=1.0, state=[0.0])
        assert 0.2 <= time.monotonic() - start < 1.5
        assert agent.session_id == sid
        agent.update(state=[0.0])
        assert agent.connection.reopened == 1
    first, resume = server.messages(MessageType.INIT)
    assert (first.session_id, resume.session_id) == (0, sid)
    identities = server.identities(MessageType.INIT)
    assert identities[0] != identities[1]
    assert server.identities(MessageType.UPDATE)[-1] == identities[1]


def test_stale_replies_are_discarded(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE:
            stale = messages.action(msg.session_id, [7], sequence=msg.sequence + 99)
            return [stale, messages.action(msg.session_id, [1])]
        return server.default(identity, msg)

    server.handler = handler
    with proxy(server) as agent:
        agent.init()
        assert agent.update(state=[0.0]) == 1


def test_vector_update_is_one_message_with_episode_flags(server: FakeServer) -> None:
    server.action_fn = lambda m: np.arange(m.session_count * 2, dtype=np.float32).reshape(-1, 2)
    with VectorAgentProxy(server.endpoint, 3, **FAST) as agent:
        assert agent.init() == 1000
        states = np.zeros((3, 84, 84), np.uint8)
        actions = agent.update(None, states)
        assert actions.shape == (3, 2)
        agent.metrics.scalar("episode_reward", 2.0)
        actions = agent.update(
            [1.0, -1.0, 0.5], states, terminal=[False, True, False], truncated=[False, False, True]
        )
        np.testing.assert_array_equal(actions[2], [4.0, 5.0])
    first, second = server.messages(MessageType.UPDATE)
    assert (first.session_count, second.session_count) == (3, 3)
    assert first.tensors[Role.STATE].dtype == np.uint8
    np.testing.assert_array_equal(first.tensors[Role.EPISODE_FLAGS], [0, 0, 0])
    assert Role.REWARD not in first.tensors
    assert second.flags == 0
    np.testing.assert_array_equal(second.tensors[Role.EPISODE_FLAGS], [0, 1, 2])
    np.testing.assert_array_equal(second.tensors[Role.REWARD], np.float32([1.0, -1.0, 0.5]))
    assert len(server.messages(MessageType.METRICS)) == 1  # an episode ended: flushed


def test_a_step_that_ends_every_episode_of_a_block_is_a_boundary_in_the_header(
    server: FakeServer,
) -> None:
    """The broker reads only the header: there a drained worker's block moves on."""
    with VectorAgentProxy(server.endpoint, 3, **FAST) as agent:
        agent.init()
        states = np.zeros((3, 2), np.float32)
        agent.update([1.0, 1.0, 1.0], states, terminal=[True, True, True])
        agent.update(None, states, truncated=[True, True, True])
        agent.update(None, states, terminal=[True] * 3, truncated=[True] * 3)
    ended = server.messages(MessageType.UPDATE)
    assert [m.flags for m in ended] == [
        int(Flag.TERMINAL),
        int(Flag.TRUNCATED),
        int(Flag.TERMINAL | Flag.TRUNCATED),
    ]
    assert all(Role.EPISODE_FLAGS not in m.tensors for m in ended)
    terminal, truncated = messages.read_episode_ends(ended[0])
    assert terminal.tolist() == [True] * 3 and truncated.tolist() == [False] * 3


def test_vector_restart_and_shape_checks(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE:
            return messages.action(msg.session_id, np.zeros(msg.session_count), restart=True)
        return server.default(identity, msg)

    server.handler = handler
    with VectorAgentProxy(server.endpoint, 2, **FAST) as agent:
        agent.init()
        with pytest.raises(ValueError, match="states of shape"):
            agent.update(None, np.zeros((3, 4)))
        with pytest.raises(ValueError, match="flags of shape"):
            agent.update(None, np.zeros((2, 4)), terminal=[True])
        with pytest.raises(EpisodeRestart):
            agent.update(None, np.zeros((2, 4)))
        assert server.messages(MessageType.INIT)[0].session_count == 2


def test_from_config_takes_the_broker_section(server: FakeServer) -> None:
    config = parse_config(
        {
            "algorithm": {"name": "reinforce"},
            "environment": {"run": "bandit", "clients": 3},
            "broker": {
                "frontend": server.endpoint,
                "client_request_timeout": 0.5,
                "retry_backoff_initial": 0.2,
                "retry_backoff_max": 0.4,
                "max_message_bytes": 4096,
            },
        },
        "test",
    )
    agent = AgentProxy.from_config(config)
    assert agent.connection.spec.endpoint == server.endpoint
    assert agent.connection.spec.max_message_bytes == 4096
    assert agent.connection.timeout == 0.5
    assert (agent.backoff.initial, agent.backoff.maximum) == (0.2, 0.4)
    vector = VectorAgentProxy.from_config(config)
    assert vector.n == 3
    with vector:
        vector.init()
    assert server.messages(MessageType.INIT)[0].session_count == 3


def test_a_second_init_closes_the_first_block_and_heartbeat_keeps_it(server: FakeServer) -> None:
    with proxy(server) as agent:
        first = agent.init()
        second = agent.init()
        agent.heartbeat()
        agent.update(reward=np.float64([0.25]), state=[0.0])
    assert (first, second) == (1000, 2000)
    closes = server.messages(MessageType.CLOSE)
    assert [c.session_id for c in closes][:1] == [1000]
    (beat,) = server.messages(MessageType.HEARTBEAT)
    assert (beat.session_id, beat.session_count) == (2000, 1)
    assert server.messages(MessageType.UPDATE)[0].tensors[Role.REWARD].dtype == np.float64
