"""Codec behaviour beyond the vectors: zero copy, real sockets, limits, encode errors."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import Limits, messages
from relaax_zmq.protocol.constants import MessageType, Role
from relaax_zmq.protocol.message import Message


def test_encode_sends_the_arrays_own_buffers(codec) -> None:
    state = np.random.default_rng(0).random((4, 84, 84), dtype=np.float32)
    frames = codec.encode(messages.update(1, state=state))
    assert frames[2] is state


def test_decode_returns_read_only_views_on_the_frames(codec) -> None:
    payload = bytes(np.arange(12, dtype=np.float32).data)
    frames = [
        bytes(memoryview(f))
        for f in codec.encode(messages.update(1, state=np.zeros((1, 12), np.float32)))
    ]
    frames[2] = payload
    state = codec.decode(frames).tensors[Role.STATE]
    assert np.shares_memory(state, np.frombuffer(payload, np.uint8))
    assert not state.flags.writeable
    with pytest.raises(ValueError):
        state[0, 0] = 1.0


def test_non_contiguous_and_big_endian_arrays_are_converted(codec) -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    strided = base[:, ::2]
    big = np.arange(3, dtype=">i4").reshape(3, 1)
    for arr in (strided, big):
        msg = messages.update(1, state=arr)
        decoded = codec.decode([bytes(memoryview(f)) for f in codec.encode(msg)])
        np.testing.assert_array_equal(decoded.tensors[Role.STATE], arr)
        assert decoded.tensors[Role.STATE].dtype.byteorder in "=<|"


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_round_trip_over_real_sockets_without_copies(codec, transport, tmp_path) -> None:
    ctx = zmq.Context()
    try:
        router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
        for s in (router, dealer):
            s.linger = 0
            s.rcvtimeo = 5000
        if transport == "tcp":
            port = router.bind_to_random_port("tcp://127.0.0.1")
            dealer.connect(f"tcp://127.0.0.1:{port}")
        else:
            router.bind(f"ipc://{tmp_path}/rlx.sock")
            dealer.connect(f"ipc://{tmp_path}/rlx.sock")
        big = np.random.default_rng(1).integers(0, 255, (64, 84, 84, 4), dtype=np.uint8)
        msg = messages.update(
            77,
            reward=np.ones(64, np.float32),
            state=big,
            terminal=np.arange(64) % 2 == 0,
            sequence=5,
        )
        dealer.send_multipart(codec.encode(msg), copy=False)
        identity, *frames = router.recv_multipart(copy=False)
        decoded = codec.decode(frames)
        assert decoded == msg
        assert isinstance(frames[2], zmq.Frame)
        assert np.shares_memory(decoded.tensors[Role.STATE], np.asarray(frames[3].buffer))
        router.send_multipart(
            [identity, *codec.encode(messages.action(77, np.zeros((64, 1)), sequence=5))]
        )
        reply = codec.decode(dealer.recv_multipart())
        assert reply.type == MessageType.ACTION and reply.sequence == 5
    finally:
        ctx.destroy(linger=0)


def test_custom_limits_are_enforced_on_both_sides(codec) -> None:
    tight = Limits(max_elements=10, max_tensors=2, max_sessions=4)
    big = messages.update(1, state=np.zeros((1, 11), np.float32))
    with pytest.raises(ProtocolError, match="tensor\\[0\\].elements"):
        codec.encode(big, tight)
    frames = [bytes(memoryview(f)) for f in codec.encode(big)]
    with pytest.raises(ProtocolError, match="expected at most 10, got 11"):
        codec.decode(frames, tight)
    with pytest.raises(ProtocolError, match="header.session_count"):
        codec.decode([bytes(memoryview(f)) for f in codec.encode(messages.init(5))], tight)
    with pytest.raises(ProtocolError, match="header.tensor_count"):
        codec.encode(messages.update(1, reward=[1.0], state=[[1]], terminal=[True]), tight)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (Message(MessageType.ACTION), "tensors"),
        (Message(MessageType.UPDATE, tensors={Role.STATE: np.array([["a"]])}), "state.dtype"),
        (Message(MessageType.UPDATE, tensors={Role.STATE: np.zeros((2, 1))}), "tensor[0].shape"),
        (
            Message(MessageType.UPDATE, tensors={Role.REWARD: np.zeros(1, np.int32)}),
            "tensor[0].dtype",
        ),
        (Message(MessageType.UPDATE, tensors={Role.ACTION: np.zeros(1)}), "tensor[0].role"),
        (Message(MessageType.UPDATE, sequence=-1), "header.sequence"),
        (Message(MessageType.UPDATE, session_id=2**64), "header.session_id"),
        (Message(MessageType.UPDATE, version=2), "header.version"),
        (Message(42), "header.type"),
        (Message(MessageType.INIT, flags=0x2), "header.flags"),
        (Message(MessageType.RESET, session_count=0), "header.session_count"),
        (Message(MessageType.UPDATE, tensors={Role.STATE: np.zeros((1,) * 9)}), "tensor[0].ndim"),
        (
            messages.update(1, state=np.zeros((1, 1)), terminal=[True]).__class__(
                MessageType.UPDATE, flags=0x2, tensors={Role.EPISODE_FLAGS: np.ones(1, np.uint8)}
            ),
            "header.flags",
        ),
        (
            Message(MessageType.UPDATE, tensors={Role.EPISODE_FLAGS: np.full(1, 8, np.uint8)}),
            "episode_flags",
        ),
    ],
)
def test_encode_refuses_invalid_messages_naming_the_field(codec, message, field) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.encode(message)
    assert info.value.field == field


@pytest.mark.parametrize("frame", [None, 3, "RLXP", object()])
def test_non_buffer_frames_are_protocol_errors(codec, frame) -> None:
    with pytest.raises(ProtocolError, match="frames\\[0\\]"):
        codec.decode([frame])


def test_strided_frame_is_refused(codec) -> None:
    header = np.frombuffer(bytes(memoryview(codec.encode(messages.init())[0])) * 2, np.uint8)[::2]
    with pytest.raises(ProtocolError, match="contiguous"):
        codec.decode([header])


def test_metrics_readers_check_counts_and_text() -> None:
    msg = messages.metrics(1, {"a": 1.0})
    msg.tensors[Role.METRIC_VALUES] = np.zeros(2)
    with pytest.raises(ProtocolError, match="metric_values: expected 1 values, got 2"):
        messages.read_metrics(msg)
    bad = messages.error(1, "x")
    bad.tensors[Role.TEXT] = np.array([0xFF], np.uint8)
    with pytest.raises(ProtocolError, match="text: expected UTF-8"):
        messages.read_error(bad)
    with pytest.raises(ProtocolError, match="metric name"):
        messages.metrics(1, {"bad\nname": 1.0})


def test_episode_ends_from_flags_and_from_tensor() -> None:
    term, trunc = messages.read_episode_ends(
        messages.update(1, state=np.zeros((3, 1)), terminal=True)
    )
    assert term.tolist() == [True] * 3 and trunc.tolist() == [False] * 3
    term, trunc = messages.read_episode_ends(
        messages.update(1, state=np.zeros((2, 1)), terminal=[True, False], truncated=[False, True])
    )
    assert term.tolist() == [True, False] and trunc.tolist() == [False, True]


def test_boundary_flags_say_in_the_header_what_episode_flags_say_per_session() -> None:
    from relaax_zmq.protocol import Flag, messages
    from relaax_zmq.protocol.constants import EpisodeFlag

    assert messages.boundary_flags(0) == 0
    assert messages.boundary_flags(int(EpisodeFlag.TERMINAL)) == int(Flag.TERMINAL)
    assert messages.boundary_flags(int(EpisodeFlag.TRUNCATED)) == int(Flag.TRUNCATED)
    both = int(EpisodeFlag.TERMINAL | EpisodeFlag.TRUNCATED)
    assert messages.boundary_flags(both) == int(Flag.TERMINAL | Flag.TRUNCATED)
