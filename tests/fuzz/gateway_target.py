"""Fuzz target ``gateway``: what the WebSocket gateway and its clients decode from a peer.

For every input (one binary WebSocket message) it checks that

- ``protocol.websocket.unpack`` returns frames or raises ``ProtocolError`` naming an
  ``envelope`` field, nothing else; accepted frames pack back to the very input (only the
  canonical envelope passes) and every frame starts 8-aligned;
- the RLX message in an accepted envelope decodes or is refused with ``ProtocolError``,
  and a decoded one encodes, in a new envelope, to frames that decode to an equal message
  (what a browser client does with a reply, what a Python ``ws://`` client does).

Seeds: the protocol's test vectors, each in its envelope, and a few broken envelopes.
"""

from __future__ import annotations

import struct

import numpy as np

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import reference
from relaax_zmq.protocol.limits import Limits
from relaax_zmq.protocol.vectors import load_vectors
from relaax_zmq.protocol.websocket import pack, unpack

from .frames import Finding

#: Limits small enough that the fuzzer reaches them.
LIMITS = Limits(max_elements=4096, max_tensors=8, max_sessions=8)
MAX_FRAMES = 2 + LIMITS.max_tensors


def seeds() -> list[bytes]:
    found = [pack(v.frames) for v in load_vectors() if v.frames]
    found += [b"", struct.pack("<2I", 1, 4) + b"abcd\0\0\0\1", struct.pack("<I", 99) + bytes(4)]
    return found


def test_one_input(data: bytes) -> None:
    try:
        frames = unpack(data, MAX_FRAMES)
    except ProtocolError as exc:
        if not exc.field.startswith("envelope"):
            raise Finding(f"unpack refused naming {exc.field!r}") from None
        return
    if pack(frames) != data:
        raise Finding("an envelope that is not canonical was accepted")
    base = memoryview(data)
    for frame in frames:
        if frame.obj is not base.obj or (frame.nbytes and _offset(base, frame) % 8):
            raise Finding("a frame is not an 8-aligned view on the message")
    check_message([bytes(f) for f in frames])


def check_message(frames: list[bytes]) -> None:
    try:
        message = reference.decode(frames, LIMITS)
    except ProtocolError:
        return
    again = reference.decode(unpack(pack(reference.encode(message, LIMITS)), MAX_FRAMES), LIMITS)
    if again != message:
        raise Finding(f"{message!r} comes back as {again!r}")


def _offset(base: memoryview, frame: memoryview) -> int:
    """Where ``frame`` starts in ``base`` (both views of one buffer)."""
    return int(
        np.frombuffer(frame, np.uint8).ctypes.data - np.frombuffer(base, np.uint8).ctypes.data
    )
