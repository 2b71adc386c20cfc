"""Every codec reproduces the checked-in RLX test vectors byte for byte."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages, reference
from relaax_zmq.protocol.constants import DType, ErrorCode, MessageType, Role
from relaax_zmq.protocol.limits import Limits
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.protocol.vectors import VECTOR_FILE, format_vectors, load_vectors

VECTORS = load_vectors()
VALID = [v for v in VECTORS if v.message is not None]
INVALID = [v for v in VECTORS if v.message is None]


def test_the_file_covers_the_protocol() -> None:
    types = {v.message.type for v in VALID}
    assert types == set(MessageType)
    dtypes = {
        arr.dtype.kind + str(arr.dtype.itemsize)
        for v in VALID
        for arr in v.message.tensors.values()
    }
    for wanted in ("u1", "i4", "i8", "f4", "f8", "b1"):
        assert wanted in dtypes
    shapes = [arr.shape for v in VALID for arr in v.message.tensors.values()]
    assert () in shapes, "a scalar"
    assert any(0 in s for s in shapes), "an empty tensor"
    assert any(len(s) >= 3 for s in shapes), "a multi-dimensional tensor"
    assert any(v.message.session_count > 1 for v in VALID), "a batch"
    assert len(INVALID) >= 25
    assert all(v.error_code is not None for v in INVALID), "every refusal states its code"


def test_the_file_is_stable_under_rewrite() -> None:
    text = VECTOR_FILE.read_text()
    body = text[text.index("# init: one session") :]
    assert format_vectors(VECTORS) == body


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.name)
def test_encode_reproduces_vector(codec, vector) -> None:
    frames = [bytes(memoryview(f)) for f in codec.encode(vector.message)]
    assert frames == vector.frames


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.name)
def test_decode_reproduces_meaning(codec, vector) -> None:
    decoded = codec.decode(vector.frames)
    assert decoded == vector.message
    assert list(decoded.tensors) == sorted(decoded.tensors), "wire order is ascending role"


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v.name)
def test_invalid_vector_is_refused_naming_the_field(codec, vector) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode(vector.frames)
    assert info.value.field == vector.error_field
    assert "expected" in str(info.value) and "got" in str(info.value)


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v.name)
def test_a_server_answers_each_invalid_vector_with_its_code_and_a_plain_text(vector) -> None:
    """The code of the file (MALFORMED, TOO_LARGE, UNSUPPORTED_VERSION), the text
    ``field: expected X, got Y`` without Python notation, the header's fields echoed."""
    with pytest.raises(ProtocolError) as info:
        reference.decode(vector.frames)
    reply = refusal(info.value, vector.frames, Limits())
    code, text, versions = messages.read_error(reply)
    assert code == vector.error_code
    assert (versions == (1,)) == (code == ErrorCode.UNSUPPORTED_VERSION)
    assert re.fullmatch(re.escape(vector.error_field) + r": expected .+, got .+", text), text
    assert not re.search(r"\bb'|\bb\"|\\x[0-9a-f]{2}", text), text
    frame0 = vector.frames[0] if vector.frames else b""
    if len(frame0) >= 16:
        assert reply.sequence == int.from_bytes(frame0[8:16], "little")


def test_error_vectors_show_the_echo_rule() -> None:
    """A refused bad magic echoes sequence and block; a count above the limit echoes 0."""
    named = {v.name: v for v in VALID}
    bad = messages.update(40, state=np.zeros((3, 1), np.float32), sequence=0x1122334455667788)
    frames = [b"RLXQ" + bytes(reference.encode(bad)[0])[4:], *reference.encode(bad)[1:]]
    with pytest.raises(ProtocolError) as info:
        reference.decode(frames)
    assert refusal(info.value, frames, Limits()) == named["error_malformed_echo"].message
    init = reference.encode(messages.init(1, sequence=77))[0]
    huge = [init[:24] + (5000).to_bytes(4, "little") + init[28:]]
    with pytest.raises(ProtocolError) as info:
        reference.decode(huge)
    assert refusal(info.value, huge, Limits()) == named["error_too_large_sessions"].message


def test_a_block_row_starting_an_episode_carries_nan() -> None:
    update = next(v.message for v in VALID if v.name == "update_block_episode_start")
    rewards = update.tensors[Role.REWARD]
    assert np.isnan(rewards).tolist() == [False, True, False]
    terminal, truncated = messages.read_episode_ends(update)
    assert terminal.tolist() == [False, False, True] and not truncated.any()


def test_header_layout_matches_the_spec_by_hand() -> None:
    """update, flags terminal, seq 0x0102..., session 7, 1 session, 1 tensor: laid out by hand."""
    frame = (
        b"RLXP"  # magic
        + bytes([1, 3])  # version 1, type update
        + (0x0002).to_bytes(2, "little")  # flags: terminal
        + (0x0102030405060708).to_bytes(8, "little")
        + (7).to_bytes(8, "little")
        + (1).to_bytes(4, "little")  # session_count
        + (1).to_bytes(2, "little")  # tensor_count
        + b"\x00\x00"  # reserved
    )
    table = struct.pack("<HBBI", Role.REWARD, DType.FLOAT32, 1, 0) + struct.pack("<8I", 1, *[0] * 7)
    payload = struct.pack("<f", 2.5)
    msg = messages.update(7, reward=[2.5], terminal=True, sequence=0x0102030405060708)
    from relaax_zmq.protocol import encode

    assert [bytes(memoryview(f)) for f in encode(msg)] == [frame, table, payload]
