"""Every codec reproduces the checked-in RLX test vectors byte for byte."""

from __future__ import annotations

import struct

import pytest

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import DType, MessageType, Role
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
