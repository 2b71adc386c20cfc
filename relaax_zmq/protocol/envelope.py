"""Envelope-only reading of RLX messages: the header and the frame count, never a payload.

The broker routes on what ``peek`` returns; the worker that receives the
message decodes and validates the tensors. ``peek`` is ``header.read``: steps
1-3 of the spec's validation order (docs/protocol.md, section 5) with the
decoders' own header checks, so a message that passes ``peek`` fails later
only in its descriptor table or payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relaax_zmq.protocol.header import Header, read

#: the routing-relevant header fields of one RLX message
Envelope = Header
#: read and check the header of ``frames`` and their count (ProtocolError names what is wrong)
peek = read


def message_bytes(frames: Sequence[Any]) -> int:
    """Total size of a multipart message in bytes (payloads are measured, not read)."""
    return sum(_size_of(frame) for frame in frames)


def _size_of(frame: Any) -> int:
    if isinstance(frame, bytes | bytearray):
        return len(frame)
    buffer = getattr(frame, "buffer", None)
    return (buffer if buffer is not None else memoryview(frame)).nbytes
