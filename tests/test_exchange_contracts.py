"""The shared pieces of the exchange: envelope peek, the link messages, the socket map, plugins."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import zmq

from relaax_zmq.config import parse_config
from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.core import Agent, AgentContext, StepBatch
from relaax_zmq.errors import AgentError, ConfigError, ProtocolError
from relaax_zmq.protocol import encode, link, messages
from relaax_zmq.protocol.constants import ErrorCode
from relaax_zmq.protocol.envelope import message_bytes, peek
from relaax_zmq.protocol.vectors import load_vectors
from relaax_zmq.runtime.registry import load_agent
from relaax_zmq.runtime.sockets import (
    ADMIN_MAX_MESSAGE_BYTES,
    LISTEN_BACKLOG,
    open_socket,
    socket_map,
)
from relaax_zmq.testing import LINEAR_POLICY_PATH

VECTORS = load_vectors()
HEADER_FIELDS = ("frames", "header")
#: header faults that only show against a tensor (TERMINAL beside an episode_flags tensor)
NEEDS_TENSORS = {"episode_flags_and_header"}


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.message], ids=lambda v: v.name)
def test_peek_reads_the_header_of_every_valid_vector(vector) -> None:
    envelope = peek(vector.frames)
    m = vector.message
    assert envelope[:6] == (m.version, m.type, m.flags, m.sequence, m.session_id, m.session_count)
    assert envelope.tensor_count == len(m.tensors)


@pytest.mark.parametrize("vector", [v for v in VECTORS if not v.message], ids=lambda v: v.name)
def test_peek_refuses_header_faults_and_passes_the_rest_to_the_decoder(vector) -> None:
    """Faults in the header or the frame count are found by peek, with the decoder's field."""
    if vector.error_field.startswith(HEADER_FIELDS) and vector.name not in NEEDS_TENSORS:
        with pytest.raises(ProtocolError) as info:
            peek(vector.frames)
        assert info.value.field == vector.error_field
    else:
        peek(vector.frames)  # descriptor and payload faults are the worker's to find


def test_message_bytes_counts_every_frame() -> None:
    frames = encode(messages.update(5, reward=[1.0, 2.0], state=np.zeros((2, 4), np.float32)))
    assert message_bytes(frames) == 32 + 2 * 40 + 2 * 4 + 2 * 4 * 4
    assert message_bytes([zmq.Frame(b"abc"), memoryview(b"de")]) == 5


def test_control_messages_round_trip() -> None:
    frames = link.control(link.Command.ASSIGN, session_id=7, count=2, exploit=False, restart=True)
    assert link.parse_command(frames[0]) is link.Command.ASSIGN
    body = link.parse_control(link.Command.ASSIGN, frames[1])
    assert body == {"session_id": 7, "count": 2, "exploit": False, "restart": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"\xff\xfe", "link.body"),
        (b"[1, 2]", "link.body"),
        (b"{}", "link.assign.session_id"),
        (
            json.dumps({"session_id": "7", "count": 1, "exploit": 0, "restart": 0}),
            "link.assign.session_id",
        ),
        (
            json.dumps({"session_id": 7, "count": True, "exploit": 0, "restart": 0}),
            "link.assign.count",
        ),
        (
            json.dumps({"session_id": -1, "count": 1, "exploit": 0, "restart": 0}),
            "link.assign.session_id",
        ),
        (
            json.dumps({"session_id": 7, "count": 1, "exploit": 0, "restart": False}),
            "link.assign.exploit",
        ),
        (b"{" + b" " * link.MAX_CONTROL_BYTES + b"}", "link.body"),
    ],
)
def test_bad_control_bodies_name_the_field(body, field) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(ProtocolError) as info:
        link.parse_control(link.Command.ASSIGN, raw)
    assert info.value.field == field


def test_unknown_link_command_is_refused() -> None:
    with pytest.raises(ProtocolError, match="link.command: expected one of REG"):
        link.parse_command(b"PICKLE")


def test_forward_wraps_rlx_frames_untouched() -> None:
    frames = encode(messages.simple(messages.MessageType.RESET, 9))
    wrapped = link.forward(link.Command.REQUEST, b"client-1", frames)
    assert wrapped[0] == b"REQ" and wrapped[1] == b"client-1" and wrapped[2:] == frames


def _config(extra: dict | None = None):
    broker = {
        "frontend": "tcp://127.0.0.1:17000",
        "backend": "tcp://127.0.0.1:17001",
        "admin": "tcp://127.0.0.1:17002",
        **(extra or {}),
    }
    return parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit"},
            "algorithm": {"path": str(LINEAR_POLICY_PATH)},
            "broker": broker,
        }
    )


def test_socket_map_names_every_exchange_socket() -> None:
    specs = socket_map(_config({"max_message_bytes": 4096}))
    assert specs["broker.frontend"].type == zmq.ROUTER and specs["broker.frontend"].bind
    assert specs["client.frontend"].type == zmq.DEALER and not specs["client.frontend"].bind
    assert specs["client.frontend"].endpoint == specs["broker.frontend"].endpoint
    assert specs["worker.backend"].endpoint == "tcp://127.0.0.1:17001"
    assert specs["broker.frontend"].max_message_bytes == 4096
    assert specs["broker.frontend"].frame_limit == 2 * 4096  # twice the largest legal message
    assert specs["broker.admin"].max_message_bytes == ADMIN_MAX_MESSAGE_BYTES


def test_a_burst_of_a_thousand_clients_connects_without_a_dropped_syn() -> None:
    """The broker frontend's listen backlog takes 1,000 connections made at once: no SYN is
    dropped on a full accept queue (with ZeroMQ's default of 100, about 200 to 2,000 are,
    each delaying its client by TCP's 1 s retransmit), and every client's message is read."""
    from bench.connect import burst

    spec = replace(socket_map(_config())["broker.frontend"], endpoint="tcp://127.0.0.1:*")
    ctx = zmq.Context()
    try:
        server = open_socket(ctx, spec)
        try:
            assert server.getsockopt(zmq.BACKLOG) == LISTEN_BACKLOG
            result = burst(server, server.getsockopt_string(zmq.LAST_ENDPOINT), 1000)
        finally:
            server.close()
    finally:
        ctx.term()
    assert result["read"] == 1000, result
    assert result["overflows"] == 0, result


def test_inproc_socket_map_pairs_binders_and_connectors() -> None:
    specs = socket_map(_config(), inproc=True)
    assert specs["broker.backend"].endpoint == specs["worker.backend"].endpoint
    assert specs["broker.backend"].endpoint.startswith("inproc://")
    ctx = zmq.Context()
    try:
        server = open_socket(ctx, specs["broker.frontend"])
        client = open_socket(ctx, specs["client.frontend"], identity=b"me")
        client.send(b"ping")
        assert server.poll(2000)
        assert server.recv_multipart() == [b"me", b"ping"]
        assert server.getsockopt(zmq.MAXMSGSIZE) == specs["broker.frontend"].frame_limit
        server.close()
        client.close()
    finally:
        ctx.term()


def test_plugin_by_path_builds_its_agent() -> None:
    config = {"actions": 3, "seed": 1}
    agent = load_agent(
        AlgorithmConfig(path=LINEAR_POLICY_PATH, config=config), AgentContext(config)
    )
    assert isinstance(agent, Agent)
    n = 4
    batch = StepBatch(
        np.arange(n, dtype=np.uint64),
        np.full(n, np.nan, np.float32),
        np.random.default_rng(0).standard_normal((n, 5)).astype(np.float32),
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.zeros(n, bool),
    )
    first = agent.act(batch)
    assert first.shape == (n,) and first.dtype == np.int64 and set(first) <= {0, 1, 2}
    assert np.array_equal(agent.act(batch), first), "a fixed policy is deterministic"
    wrong = StepBatch(
        *[getattr(batch, f) for f in ("session_ids", "rewards")],
        np.zeros((n, 6), np.float32),
        batch.terminal,
        batch.truncated,
        batch.exploit,
    )
    with pytest.raises(ValueError, match="expected observations of 5 values, got 6"):
        agent.act(wrong)


@pytest.mark.parametrize("name", ["cem", "da3c", "ddpg", "dqn", "ppo", "reinforce", "trpo"])
def test_every_builtin_loads_and_refuses_to_run_without_parameter_servers(name) -> None:
    output = {"low": [-1.0], "high": [1.0]} if name == "ddpg" else {"actions": 2}
    config = {"input": {"shape": [4]}, "output": output}
    with pytest.raises(ValueError, match="parameter servers"):
        load_agent(AlgorithmConfig(name=name), AgentContext(config=config))


def test_plugin_folder_without_a_declaration_is_refused(tmp_path) -> None:
    (tmp_path / "algo").mkdir()
    (tmp_path / "algo" / "__init__.py").write_text("")
    with pytest.raises(ConfigError, match="expected ALGORITHM = .*Algorithm.*got nothing"):
        load_agent(AlgorithmConfig(path=tmp_path / "algo"), AgentContext())
    (tmp_path / "algo2").mkdir()
    (tmp_path / "algo2" / "__init__.py").write_text("ALGORITHM = 42\n")
    with pytest.raises(ConfigError, match="expected ALGORITHM = .*got int"):
        load_agent(AlgorithmConfig(path=tmp_path / "algo2"), AgentContext())


def test_agent_error_names_the_code() -> None:
    assert str(AgentError(int(ErrorCode.BUSY), "no worker has room")) == "BUSY: no worker has room"
    assert str(AgentError(None, "no reply in 10 s")) == "TIMEOUT: no reply in 10 s"
