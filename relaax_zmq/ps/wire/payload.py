"""Payloads of the parameter-server wire: float vectors in frames, sent and read without a copy.

A float32 payload (gradients, weights) travels as ``chunk_count(count)`` frames (at least
one) of ``CHUNK_VALUES`` values but the last: ZeroMQ moves several 4 MiB frames much
faster than one of 40 MB (the allocator maps every buffer above 32 MiB afresh). Decoding
gives a ``Payload`` of read-only views on them. Statistics travel as one float64 frame.

Everything that cuts or joins frames reads ``CHUNK_VALUES`` here at call time, so that
a test or a fuzz target may set this module's ``CHUNK_VALUES`` to get small frames
(setting the name ``wire.CHUNK_VALUES`` re-exports changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from relaax_zmq.errors import ProtocolError

#: float32 values per payload frame (4 MiB).
CHUNK_VALUES = 1 << 20
#: The largest frame of the wire: a full payload frame (headers are far smaller). The
#: shard and worker sockets let ZeroMQ drop peers above twice this (relaax_zmq/runtime/sockets.py).
MAX_FRAME_BYTES = 4 * CHUNK_VALUES
#: Most float64 values in the shared statistics: one payload frame's bytes.
MAX_STATISTICS_VALUES = MAX_FRAME_BYTES // 8
F32 = np.dtype("<f4")
F64 = np.dtype("<f8")


class Payload:
    """A received float32 vector: read-only views on its frames, in order."""

    __slots__ = ("chunks", "size")

    def __init__(self, chunks: Sequence[np.ndarray]) -> None:
        self.chunks = tuple(chunks)
        self.size = sum(c.size for c in self.chunks)

    @property
    def dtype(self) -> np.dtype:
        return self.chunks[0].dtype

    def array(self) -> np.ndarray:
        """The vector: the frame itself when it is one, else a contiguous copy."""
        if len(self.chunks) == 1:
            return self.chunks[0]
        return np.concatenate(self.chunks)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.array()
        return array if dtype is None else array.astype(dtype)

    def copy_into(self, out: np.ndarray) -> None:
        """Copy the vector into ``out`` (of the same size), frame by frame."""
        if out.size != self.size:
            raise ValueError(f"payload: expected {self.size} values, got room for {out.size}")
        at = 0
        for chunk in self.chunks:
            out[at : at + chunk.size] = chunk
            at += chunk.size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Payload | np.ndarray):
            return NotImplemented
        return bool(np.array_equal(self.array(), np.asarray(other)))

    __hash__ = None  # type: ignore[assignment]


def chunk_count(count: int) -> int:
    """Frames of a float32 payload of ``count`` values."""
    return max(1, -(-count // CHUNK_VALUES))


# -- sending ----------------------------------------------------------------------------------


def as_payload(values: np.ndarray | Payload, dtype: np.dtype = F32) -> np.ndarray:
    """``values`` as a contiguous 1-D little-endian vector; ``ValueError`` when not a float one."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind != "f":
        raise ValueError(f"payload: expected a 1-D float array, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def statistics_payload(values: Any) -> np.ndarray:
    """Statistics values as float64, at most ``MAX_STATISTICS_VALUES`` of them."""
    out = as_payload(values, F64)
    if out.size > MAX_STATISTICS_VALUES:
        raise ValueError(f"statistics: {out.size} values > MAX_STATISTICS_VALUES")
    return out


def split(values: np.ndarray) -> list[np.ndarray]:
    """The frames of a float32 payload: views of ``CHUNK_VALUES`` (the vector when smaller)."""
    if values.size <= CHUNK_VALUES:
        return [values]
    return [values[i : i + CHUNK_VALUES] for i in range(0, values.size, CHUNK_VALUES)]


# -- receiving --------------------------------------------------------------------------------


def join(frames: Sequence[Any], count: int, where: str) -> Payload:
    """The float32 payload of ``count`` values in ``frames`` (``chunk_count(count)`` of them)."""
    sizes = [min(CHUNK_VALUES, count - i) for i in range(0, count, CHUNK_VALUES)] or [0]
    return Payload([read_values(f, n, where) for f, n in zip(frames, sizes, strict=True)])


def check_statistics_count(count: int, where: str) -> None:
    if count > MAX_STATISTICS_VALUES:
        raise ProtocolError(f"{where}.count", f"<= {MAX_STATISTICS_VALUES}", count)


def read_values(frame: Any, count: int, where: str, dtype: np.dtype = F32) -> np.ndarray:
    """``count`` values of ``dtype`` in one frame: a read-only view on it."""
    buffer = frame.buffer if hasattr(frame, "buffer") else memoryview(frame)
    size = dtype.itemsize
    if buffer.nbytes != size * count:
        raise ProtocolError(
            f"{where}.payload",
            f"{size * count} bytes (count {count} {dtype.name})",
            f"{buffer.nbytes} bytes",
        )
    return np.frombuffer(buffer, dtype=dtype)
