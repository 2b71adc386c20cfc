"""Multipart messages from fuzz bytes (``take_frames``) and back (``join_frames``, for seeds).

A frame list is read with a ``FuzzedDataProvider``: its count (one byte) and each
frame's length (two bytes) come from the end of the data, the frames' bytes from
the front, as libFuzzer's provider takes integers and bytes. ``join_frames`` writes
the input that ``take_frames`` reads back as the same frames, so that real messages
(the protocol's test vectors) seed the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import atheris

#: Most frames one message gets (the RLX vectors have at most 2 + tensors).
MAX_FRAMES = 12
#: Longest frame a fuzz input gives (a length is two bytes).
MAX_FRAME = 0xFFFF


class Finding(AssertionError):
    """A property of a target does not hold: the fuzzer reports the input as a crash."""


def take_frames(fdp: atheris.FuzzedDataProvider, max_frames: int = MAX_FRAMES) -> list[bytes]:
    """The next frame list of ``fdp`` (0..``max_frames`` frames)."""
    count = fdp.ConsumeIntInRange(0, max_frames)
    return [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, MAX_FRAME)) for _ in range(count)]


def split_frames(data: bytes, max_frames: int = MAX_FRAMES) -> list[bytes]:
    """The frame list a whole fuzz input stands for."""
    return take_frames(atheris.FuzzedDataProvider(data), max_frames)


def join_frames(frames: Sequence[bytes], max_frames: int = MAX_FRAMES) -> bytes:
    """The fuzz input ``split_frames`` reads as ``frames``."""
    if len(frames) > max_frames or any(len(f) > MAX_FRAME for f in frames):
        raise ValueError(f"at most {max_frames} frames of {MAX_FRAME} bytes each")
    # integers are read from the end, most significant byte first: the tail, reversed
    taken = [len(frames)]
    for frame in frames:
        taken += [len(frame) >> 8, len(frame) & 0xFF]
    return b"".join(frames) + bytes(reversed(taken))


def nested(fdp: atheris.FuzzedDataProvider, text: bytes) -> bytes:
    """``text``, or inside JSON arrays nested up to 3000 deep (parsers recurse on them)."""
    depth = fdp.ConsumeIntInRange(0, 3000) if fdp.ConsumeIntInRange(0, 3) == 0 else 0
    return b"[" * depth + text + b"]" * depth
