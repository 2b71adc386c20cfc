"""Envelope-only reading of RLX messages: the header and the frame count, never a payload.

The broker routes on what ``peek`` returns; the worker that receives the
message decodes and validates the tensors. ``peek`` applies steps 1-3 of the
spec's validation order (docs/protocol.md, section 5) and the same header
rules as the decoders, so a message that passes ``peek`` fails later only in
its descriptor table or payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol.constants import HEADER, HEADER_SIZE, MAGIC
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.reference import _check_header


class Envelope(NamedTuple):
    """The routing-relevant header fields of one RLX message."""

    version: int
    type: int
    flags: int
    sequence: int
    session_id: int
    session_count: int
    tensor_count: int


def peek(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> Envelope:
    """Read and check the header of ``frames`` (frame 0) and their count.

    Raises:
        ProtocolError: naming the first header field or frame count that is wrong.
    """
    if not frames:
        raise ProtocolError("frames", "at least 1 frame (the header)", "0 frames")
    head = _bytes_of(frames[0])
    if len(head) != HEADER_SIZE:
        raise ProtocolError("header", f"{HEADER_SIZE} bytes", f"{len(head)} bytes")
    magic, version, mtype, flags, seq, sid, n, count, reserved = HEADER.unpack(head)
    if magic != MAGIC:
        raise ProtocolError("header.magic", MAGIC, bytes(magic))
    _check_header(version, mtype, flags, reserved, n, count, limits)
    expected = 1 + (count > 0) + count
    if len(frames) != expected:
        raise ProtocolError("frames", f"{expected} frames", f"{len(frames)} frames")
    return Envelope(version, mtype, flags, seq, sid, n, count)


def message_bytes(frames: Sequence[Any]) -> int:
    """Total size of a multipart message in bytes (payloads are measured, not read)."""
    return sum(_size_of(frame) for frame in frames)


def _bytes_of(frame: Any) -> bytes | memoryview:
    if isinstance(frame, bytes | bytearray | memoryview):
        return frame
    buffer = getattr(frame, "buffer", None)  # zmq.Frame
    return buffer if buffer is not None else memoryview(frame)


def _size_of(frame: Any) -> int:
    if isinstance(frame, bytes | bytearray):
        return len(frame)
    buffer = getattr(frame, "buffer", None)
    return (buffer if buffer is not None else memoryview(frame)).nbytes
