"""The experience wire: named tensors round-trip without a copy; anything malformed is a
``ProtocolError`` naming the part, what was expected and what came."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zmq

from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner import wire


def message(**fields: np.ndarray) -> wire.TensorMessage:
    fields = fields or {
        "obs": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "action": np.array([[1, 0], [0, 1]], np.int64),
        "done": np.array([[0, 1], [0, 0]], np.float32),
        "mask": np.array([True, False]),
    }
    return wire.TensorMessage("unrolls", fields, "worker-0@h", 41, 4, 1, {"lag": 2.0})


def raw(m: wire.TensorMessage) -> list[bytes]:
    return [bytes(memoryview(f)) for f in wire.encode(m)]


def test_a_message_round_trips_field_for_field() -> None:
    sent = message()
    got = wire.decode(raw(sent), 1 << 20)
    assert (got.kind, got.source, got.version, got.steps, got.episodes) == (
        "unrolls", "worker-0@h", 41, 4, 1,
    )  # fmt: skip
    assert dict(got.meta) == {"lag": 2.0}
    assert list(got.fields) == list(sent.fields)
    for name, array in sent.fields.items():
        assert got.fields[name].dtype == array.dtype and np.array_equal(got.fields[name], array)
        assert not got.fields[name].flags.writeable


def test_tensors_travel_over_zeromq_without_a_copy_on_either_side() -> None:
    context = zmq.Context()
    pull, push = context.socket(zmq.PULL), context.socket(zmq.PUSH)
    try:
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push.connect(f"tcp://127.0.0.1:{port}")
        obs = np.random.default_rng(0).random((1, 33, 84), np.float32)
        frames = wire.encode(message(obs=obs))
        assert np.shares_memory(np.frombuffer(frames[1], np.float32), obs)  # sent from obs itself
        push.send_multipart(frames, copy=False)
        received = pull.recv_multipart(copy=False)
        got = wire.decode(received, 1 << 20)
        assert np.array_equal(got.fields["obs"], obs)
        assert np.shares_memory(got.fields["obs"], np.frombuffer(received[1].buffer, np.uint8))
    finally:
        push.close(0)
        pull.close(0)
        context.term()


def header_of(m: wire.TensorMessage) -> dict:
    return json.loads(raw(m)[0])


@pytest.mark.parametrize(
    ("change", "part"),
    [
        (lambda h: h.update(v=2), "header.v"),
        (lambda h: h.update(kind="gradients"), "header.kind"),
        (lambda h: h.update(version=-1), "header.version"),
        (lambda h: h.update(steps=1.5), "header.steps"),
        (lambda h: h.update(source="x" * 201), "header.source"),
        (lambda h: h["fields"][0].__setitem__(1, "|O"), "header.fields[0] (obs)"),
        (lambda h: h["fields"][0].__setitem__(2, [2, -3, 4]), "header.fields[0] (obs)"),
        (lambda h: h["fields"][1].__setitem__(0, "obs"), "header.fields[1]"),
        (lambda h: h["fields"][0].__setitem__(2, [2, 3, 5]), "field 'obs'"),
        (lambda h: h.update(meta={"lag": "far"}), "header.meta"),
    ],
)
def test_a_wrong_header_is_refused_naming_the_part(change, part: str) -> None:
    frames = raw(message())
    header = header_of(message())
    change(header)
    frames[0] = json.dumps(header).encode()
    with pytest.raises(ProtocolError) as refused:
        wire.decode(frames, 1 << 20)
    assert refused.value.field == part


def test_frames_bytes_nesting_and_size_are_checked() -> None:
    frames = raw(message())
    with pytest.raises(ProtocolError, match="frames: expected 1 \\+ 4"):
        wire.decode(frames[:-1], 1 << 20)
    with pytest.raises(ProtocolError, match="field 'action': expected 32 bytes"):
        wire.decode([frames[0], frames[1], frames[2][:-1], *frames[3:]], 1 << 20)
    with pytest.raises(ProtocolError, match="tensors: expected at most 100 bytes"):
        wire.decode(frames, 100)
    with pytest.raises(ProtocolError, match="header: expected a UTF-8 JSON object"):
        wire.decode([b"[" * 60_000, *frames[1:]], 1 << 20)  # found by the fuzzer
    with pytest.raises(ProtocolError, match="header: expected a UTF-8 JSON object"):
        wire.decode([b"\xff" + frames[0], *frames[1:]], 1 << 20)
    assert wire.decode(frames, 1 << 20).nbytes == 96 + 32 + 16 + 2  # negative control


def test_encode_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind: expected one of"):
        wire.encode(wire.TensorMessage("pickles", {}))
