"""The WebSocket transport's envelope: one RLX multipart message in one binary WebSocket message.

docs/protocol.md, section 8, is the contract. Little-endian::

    u32 F                  frame count, 1 .. 2 + max_tensors
    u32 length[F]          byte length of each frame
    zero bytes up to the next multiple of 8
    frame 0, zero bytes up to the next multiple of 8, frame 1, ..., the last frame padded too

Every frame starts at an 8-aligned offset, so a browser views payloads as typed arrays
on the received ArrayBuffer without copying. ``unpack`` returns memoryviews on the
message (no copy); ``pack`` writes the frames after one header.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from relaax_zmq.errors import ProtocolError

__all__ = ["ALIGN", "SUBPROTOCOL", "TOKEN_PREFIX", "pack", "packed_size", "unpack"]

#: The subprotocol a client offers and the gateway selects.
SUBPROTOCOL = "rlx.v1"
#: An access token travels as a second offered subprotocol: ``rlx-token.<TOKEN>``.
TOKEN_PREFIX = "rlx-token."
#: Alignment of every frame in the message.
ALIGN = 8
_ZEROS = bytes(ALIGN)


def _pad(size: int) -> int:
    return -size % ALIGN


def _bytes_view(frame: Any) -> memoryview:
    """``frame``'s bytes as a flat view (an empty tensor of any shape: no bytes)."""
    view = memoryview(frame)
    return view.cast("B") if view.nbytes else memoryview(b"")


def packed_size(lengths: Sequence[int]) -> int:
    """Bytes of the envelope holding frames of ``lengths``."""
    table = 4 + 4 * len(lengths)
    return table + _pad(table) + sum(n + _pad(n) for n in lengths)


def pack(frames: Sequence[Any]) -> bytes:
    """The envelope holding ``frames`` (bytes-like objects, zmq Frames included)."""
    views = [_bytes_view(f.buffer if hasattr(f, "buffer") else f) for f in frames]
    lengths = [v.nbytes for v in views]
    table = struct.pack(f"<{len(lengths) + 1}I", len(lengths), *lengths)
    parts: list[Any] = [table, _ZEROS[: _pad(len(table))]]
    for view in views:
        parts.append(view)
        parts.append(_ZEROS[: _pad(view.nbytes)])
    return b"".join(parts)


def unpack(data: bytes | bytearray | memoryview, max_frames: int) -> list[memoryview]:
    """The frames of one envelope as views on ``data``; ProtocolError names what is wrong.

    ``max_frames`` is 2 + the protocol's ``max_tensors``.
    """
    view = memoryview(data).cast("B")
    size = view.nbytes
    if size < 8:
        raise ProtocolError("envelope", "at least 8 bytes", f"{size} bytes")
    (count,) = struct.unpack_from("<I", view, 0)
    if not 1 <= count <= max_frames:
        raise ProtocolError("envelope.frame_count", f"1..{max_frames}", count)
    table = 4 + 4 * count
    if size < table:
        raise ProtocolError(
            "envelope.lengths", f"{table} bytes of frame table", f"a message of {size} bytes"
        )
    lengths = struct.unpack_from(f"<{count}I", view, 4)
    expected = packed_size(lengths)
    if size != expected:
        raise ProtocolError(
            "envelope.size", f"{expected} bytes for frames of {list(lengths)}", f"{size} bytes"
        )
    offset = table
    frames = []
    for i in range(-1, count):
        if i >= 0:
            frames.append(view[offset : offset + lengths[i]])
            offset += lengths[i]
        pad = _pad(offset)
        if pad and any(view[offset : offset + pad]):
            where = "frame table" if i < 0 else f"frame {i}"
            raise ProtocolError("envelope.padding", "zero bytes", f"non-zero after {where}")
        offset += pad
    return frames
