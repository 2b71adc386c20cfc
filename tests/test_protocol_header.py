"""The RLX header module: layout, pack/unpack, checks, salvage, and one reading for all users."""

from __future__ import annotations

import struct

import pytest
import zmq

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import Limits, constants, header, messages, reference
from relaax_zmq.protocol.envelope import peek
from relaax_zmq.protocol.header import Header
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.protocol.vectors import load_vectors

VECTORS = load_vectors()
#: docs/protocol.md, section 6: one session (id 7), terminal, sequence 0x0102030405060708
SPEC_EXAMPLE = bytes.fromhex(
    "524c5850 01 03 0200 0807060504030201 0700000000000000 01000000 0100 0000"
)


def test_layout_is_the_spec_table() -> None:
    codes = [code for _, code in header.FIELDS]
    offsets = {
        name: struct.calcsize("<" + "".join(codes[:i])) for i, (name, _) in enumerate(header.FIELDS)
    }
    assert offsets == {
        "magic": 0,
        "version": 4,
        "type": 5,
        "flags": 6,
        "sequence": 8,
        "session_id": 16,
        "session_count": 24,
        "tensor_count": 28,
        "reserved": 30,
    }  # the offsets ext/codec.pyx reads
    assert header.LAYOUT.size == constants.HEADER_SIZE == 32
    assert set(Header._fields) == set(offsets)


def test_pack_and_unpack_round_trip_the_spec_example() -> None:
    head = Header(1, 3, 0x2, 0x0102030405060708, 7, 1, 1)
    assert header.pack(head) == SPEC_EXAMPLE
    assert header.unpack(SPEC_EXAMPLE) == head
    assert header.unpack(zmq.Frame(SPEC_EXAMPLE)) == head
    assert header.unpack(memoryview(SPEC_EXAMPLE)) == head
    assert header.check(head).flags & 0x2


@pytest.mark.parametrize(
    ("head", "text"),
    [
        (
            Header(1, 3, 0, 0, 1, 1, 0, magic=b"RLXQ"),
            "header.magic: expected 52 4c 58 50 (RLXP), got 52 4c 58 51",
        ),
        (Header(2, 3, 0, 0, 1, 1, 0), "header.version: expected one of [1], got 2"),
        (Header(1, 11, 0, 0, 1, 1, 0), "header.type: expected a message type 1..10, got 11"),
        (Header(1, 3, 0x10, 0, 1, 1, 0), "header.flags: expected only bits 0xf, got 0x10"),
        (Header(1, 3, 0x1, 0, 1, 1, 0), "header.flags: expected only bits 0x6 for update, got 0x1"),
        (Header(1, 3, 0, 0, 1, 1, 0, reserved=5), "header.reserved: expected 0, got 5"),
        (Header(1, 3, 0, 0, 1, 0, 0), "header.session_count: expected 1..4, got 0"),
        (Header(1, 3, 0, 0, 1, 5, 0), "header.session_count: expected 1..4, got 5"),
        (Header(1, 3, 0, 0, 1, 1, 3), "header.tensor_count: expected at most 2, got 3"),
    ],
)
def test_check_names_what_was_expected_and_what_came(head: Header, text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        header.check(head, Limits(max_tensors=2, max_sessions=4))
    assert str(info.value) == text


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (SPEC_EXAMPLE[:31], "header: expected 32 bytes, got 31 bytes"),
        (SPEC_EXAMPLE + b"\0", "header: expected 32 bytes, got 33 bytes"),
        ("x" * 32, "frames[0]: expected a bytes-like object, got str"),
        (
            memoryview(SPEC_EXAMPLE * 2)[::2],
            "frames[0]: expected a contiguous buffer, got a strided buffer",
        ),
    ],
)
def test_unpack_refuses_what_is_not_a_header(frame: object, text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        header.unpack(frame)
    assert str(info.value) == text


def test_pack_refuses_ids_beyond_64_bits() -> None:
    text = "header.session_id: expected 0..18446744073709551615, got 18446744073709551616"
    with pytest.raises(ProtocolError, match=text):
        header.pack(Header(1, 3, 0, 0, 2**64, 1, 0))


def test_read_checks_the_frame_count() -> None:
    with pytest.raises(ProtocolError, match="frames: expected 1 frames, got 2 frames"):
        header.read([SPEC_EXAMPLE[:28] + b"\0\0\0\0", b""])
    with pytest.raises(ProtocolError, match="frames: expected at least 1 frame"):
        header.read([])


@pytest.mark.parametrize(
    ("frames", "salvaged"),
    [
        ([SPEC_EXAMPLE], (0x0102030405060708, 7, 1)),
        # each field echoed when frame 0 holds its bytes, whatever the magic or the length
        ([SPEC_EXAMPLE[:30]], (0x0102030405060708, 7, 1)),
        ([SPEC_EXAMPLE[:27]], (0x0102030405060708, 7, 0)),
        ([SPEC_EXAMPLE[:23]], (0x0102030405060708, 0, 0)),
        ([SPEC_EXAMPLE[:15]], (0, 0, 0)),
        ([b"JUNK" + SPEC_EXAMPLE[4:]], (0x0102030405060708, 7, 1)),
        ([SPEC_EXAMPLE + b"\0" * 8], (0x0102030405060708, 7, 1)),
        ([object()], (0, 0, 0)),  # not a buffer
        ([memoryview(SPEC_EXAMPLE * 2)[::2]], (0, 0, 0)),  # strided
        ([], (0, 0, 0)),
        ([SPEC_EXAMPLE[:24] + b"\xff\xff\0\0" + SPEC_EXAMPLE[28:]], (0x0102030405060708, 7, 0)),
    ],
)
def test_salvage_reads_what_it_can(frames: list, salvaged: tuple[int, int, int]) -> None:
    assert header.salvage(frames, max_sessions=4096) == salvaged


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_decoder_peek_and_refusal_agree_on_the_same_bytes(vector) -> None:
    """The reference decoder, the broker's peek and the error reply read one header."""
    try:
        message = reference.decode(vector.frames)
    except ProtocolError as exc:
        reply = refusal(exc, vector.frames, Limits())
        echoed = (reply.sequence, reply.session_id, reply.session_count)
        try:
            env = peek(vector.frames)
        except ProtocolError as peeked:
            assert str(peeked) == str(exc)  # the header or frame count is what is wrong
            return
        assert echoed == (env.sequence, env.session_id, env.session_count)
        return
    env = peek(vector.frames)
    assert env[:6] == message.header_fields()
    assert header.pack(env) == vector.frames[0]
    assert header.salvage(vector.frames, 4096) == env[3:6]


def test_broker_replies_pack_like_the_codec() -> None:
    """A tensor-less reply packed from a Header equals the codec's encoding of it."""
    done = messages.simple(constants.MessageType.DONE, 9, 2, sequence=41)
    head = Header(1, int(constants.MessageType.DONE), 0, 41, 9, 2, 0)
    assert reference.encode(done) == [header.pack(head)]
