"""The RLX v1 header (docs/protocol.md, section 2.1) and the frame envelope around it.

The one place in Python that packs, unpacks and checks frame 0: the reference
codec, the broker's ``envelope.peek``, error replies (``refusal``) and the
broker's tensor-less replies all go through here. ``read`` applies steps 1-3
of the spec's validation order (frames, header, frame count); the compiled
codec parses the same layout in C and leaves every error to the reference.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol.constants import (
    HEADER_SIZE,
    KNOWN_FLAGS,
    MAGIC,
    SUPPORTED_VERSIONS,
    type_name,
)
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.schema import TYPE_RULES, TypeRule

#: the spec's field table in wire order: (field, struct code), little-endian
FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "4s"),
    ("version", "B"),
    ("type", "B"),
    ("flags", "H"),
    ("sequence", "Q"),
    ("session_id", "Q"),
    ("session_count", "I"),
    ("tensor_count", "H"),
    ("reserved", "H"),
)
LAYOUT = struct.Struct("<" + "".join(code for _, code in FIELDS))
assert LAYOUT.size == HEADER_SIZE, "the field table disagrees with HEADER_SIZE"

_UNREADABLE = (struct.error, TypeError, BufferError, ValueError)
#: the magic as error texts write bytes: hex, no language's notation
_MAGIC_TEXT = f"{MAGIC.hex(' ')} ({MAGIC.decode()})"


class Header(NamedTuple):
    """The fields of frame 0. The first six are ``Message.header_fields()``; magic and
    reserved, fixed in version 1, come last so that a header is built from what varies."""

    version: int
    type: int
    flags: int
    sequence: int
    session_id: int
    session_count: int
    tensor_count: int
    magic: bytes = MAGIC
    reserved: int = 0


_new = tuple.__new__  # builds a Header from all nine fields without NamedTuple's __new__


def pack(head: Header) -> bytes:
    """Frame 0 of ``head`` (not checked: ``check`` it first unless it is known good).

    Raises:
        ProtocolError: the sequence or session id does not fit in 64 bits.
    """
    version, mtype, flags, seq, sid, n, count, magic, reserved = head
    try:
        return LAYOUT.pack(magic, version, mtype, flags, seq, sid, n, count, reserved)
    except struct.error:
        for name in ("sequence", "session_id"):
            value = getattr(head, name)
            if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
                raise ProtocolError(f"header.{name}", f"0..{0xFFFFFFFFFFFFFFFF}", value) from None
        raise


def unpack(frame: Any) -> Header:
    """The header in ``frame`` (bytes, a zmq.Frame, any contiguous buffer); not checked.

    Raises:
        ProtocolError: ``frames[0]`` is not a contiguous buffer, or ``header`` not 32 bytes.
    """
    try:
        magic, version, mtype, flags, seq, sid, n, count, reserved = LAYOUT.unpack(frame)
    except _UNREADABLE:
        buf = buffer(0, frame)  # raises for a frame that is no contiguous buffer
        if buf.nbytes != HEADER_SIZE:
            raise ProtocolError("header", f"{HEADER_SIZE} bytes", f"{buf.nbytes} bytes") from None
        magic, version, mtype, flags, seq, sid, n, count, reserved = LAYOUT.unpack(buf)
    return _new(Header, (version, mtype, flags, seq, sid, n, count, magic, reserved))


def check(head: Header, limits: Limits = DEFAULT_LIMITS) -> TypeRule:
    """Check ``head`` in the spec's order (magic, version, type, flags, reserved,
    session_count, tensor_count); returns the rule of its message type.

    Raises:
        ProtocolError: naming the first field that is wrong, what was expected and what came.
    """
    version, mtype, flags, _, _, n, count, magic, reserved = head
    if magic != MAGIC:
        raise ProtocolError("header.magic", _MAGIC_TEXT, bytes(magic).hex(" "))
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError("header.version", f"one of {list(SUPPORTED_VERSIONS)}", version)
    rule = TYPE_RULES.get(mtype)
    if rule is None:
        raise ProtocolError("header.type", "a message type 1..10", mtype)
    if flags & ~KNOWN_FLAGS:
        raise ProtocolError("header.flags", f"only bits {KNOWN_FLAGS:#x}", f"{flags:#x}")
    if flags & ~rule.flags:
        raise ProtocolError(
            "header.flags", f"only bits {rule.flags:#x} for {type_name(mtype)}", f"{flags:#x}"
        )
    if reserved:
        raise ProtocolError("header.reserved", 0, reserved)
    if not rule.min_sessions <= n <= limits.max_sessions:
        raise ProtocolError(
            "header.session_count", f"{rule.min_sessions}..{limits.max_sessions}", n
        )
    if count > limits.max_tensors:
        raise ProtocolError("header.tensor_count", f"at most {limits.max_tensors}", count)
    return rule


def read(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> Header:
    """The checked header of ``frames``: validation steps 1-3 (frames, header, frame count).

    Raises:
        ProtocolError: naming the first field or frame count that is wrong.
    """
    nframes = len(frames)
    if not nframes:
        raise ProtocolError("frames", "at least 1 frame (the header)", "0 frames")
    head = unpack(frames[0])
    check(head, limits)
    count = head.tensor_count
    expected = 1 + (count > 0) + count
    if nframes != expected:
        raise ProtocolError("frames", f"{expected} frames", f"{nframes} frames")
    return head


def salvage(frames: Sequence[Any], max_sessions: int) -> tuple[int, int, int]:
    """(sequence, session_id, session_count) of a refused message, for its error reply.

    Read with the version 1 layout whatever the magic, version or length of frame 0:
    each field is echoed when frame 0 holds its bytes (sequence: 16 bytes, session_id:
    24, session_count: 28), 0 else; a count above ``max_sessions`` reads as 0 (the reply
    must itself be valid). Zeros when there is no frame 0 or it is no contiguous buffer.
    """
    if not frames:
        return 0, 0, 0
    try:
        raw = buffer(0, frames[0])
    except ProtocolError:
        return 0, 0, 0
    size = raw.nbytes
    sequence = int.from_bytes(raw[8:16], "little") if size >= 16 else 0
    session_id = int.from_bytes(raw[16:24], "little") if size >= 24 else 0
    n = int.from_bytes(raw[24:28], "little") if size >= 28 else 0
    return sequence, session_id, n if n <= max_sessions else 0


def buffer(index: int, frame: Any) -> memoryview:
    """A flat byte view of ``frames[index]`` (validation step 1).

    Raises:
        ProtocolError: the frame is not a contiguous byte buffer.
    """
    try:
        buf = memoryview(frame)
    except TypeError:
        raise ProtocolError(
            f"frames[{index}]", "a bytes-like object", type(frame).__name__
        ) from None
    if not buf.c_contiguous:
        raise ProtocolError(f"frames[{index}]", "a contiguous buffer", "a strided buffer")
    return buf.cast("B") if buf.format != "B" or buf.ndim != 1 else buf
