"""The parameter-server wire: what workers and shards send each other (docs/parameter_servers.md).

Worker -> shard (PUSH -> PULL), one message per frame list:

- ``GRADIENT``: ``[header, payload]``: a gradient slice and what it covers;
- ``HELLO``: ``[header]``: send me your current weights;
- ``WORKER_HEARTBEAT``: ``[header]``: I am alive, what I heard from shard 0, and my
  recent score (mean of ``checkpoint.best_metric``; NaN: none yet);
- ``STATISTICS`` (shard 0 only): ``[header, payload]``: float64 deltas to add to the
  algorithm's shared statistics (observation-normalizer sums, for example).

Shard -> workers (PUB -> SUB), the first frame is the shard's topic:

- ``WEIGHTS``: ``[topic, header, payload]``: a versioned weight slice;
- ``SHARD_HEARTBEAT``: ``[topic, header]``: incarnation, version, counters, stopping;
- ``STATISTICS_TOTALS`` (shard 0 only): ``[topic, header, payload]``: the shared
  statistics' float64 totals and how many deltas they hold.

Every header starts with the same 8 bytes (``PREFIX``: magic, wire version, kind,
shard) followed by the kind's fixed little-endian fields; worker messages end with
the worker's UTF-8 name. A float32 payload (gradients, weights) travels as
``ceil(count / CHUNK_VALUES)`` frames (at least one) of ``CHUNK_VALUES`` values but
the last: ZeroMQ moves several 4 MiB frames much faster than one of 40 MB (the
allocator maps every buffer above 32 MiB afresh), and decoding gives a ``Payload``
of read-only views on them. Payloads are raw little-endian float32 (weights, gradients)
or float64 (statistics), one frame each, sent without a copy and read back as
read-only numpy views on the frames. Every
decoder checks every field and raises ``ProtocolError`` naming the first wrong
one; nothing is ever unpickled.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from relaax_zmq.errors import ProtocolError

MAGIC = b"RXPS"
#: float32 values per payload frame (4 MiB).
CHUNK_VALUES = 1 << 20
#: The largest frame of the wire: a full payload frame (headers are far smaller). The
#: shard and worker sockets let ZeroMQ drop peers above twice this (relaax_zmq/sockets.py).
MAX_FRAME_BYTES = 4 * CHUNK_VALUES
#: Most float64 values in the shared statistics: one payload frame's bytes.
MAX_STATISTICS_VALUES = MAX_FRAME_BYTES // 8
WIRE_VERSION = 2
#: Longest worker name in bytes (UTF-8).
MAX_NAME_BYTES = 255
#: Shard heartbeat flag: training reached ``max_global_step``; stop pushing.
FLAG_STOPPING = 0x01
KNOWN_FLAGS = FLAG_STOPPING

PREFIX = struct.Struct("<4sBBH")  # magic, wire version, kind, shard
GRADIENT = struct.Struct("<QQQQQH")  # base_version, steps, episodes, offset, count, name_len
HELLO = struct.Struct("<QH")  # known_version, name_len
WORKER_HEARTBEAT = struct.Struct("<QBdH")  # global_step, flags, score, name_len
STATISTICS = struct.Struct("<QH")  # count, name_len
WEIGHTS = struct.Struct("<QQQQQQQ")  # incarnation, version, step, episodes, offset, count, total
SHARD_HEARTBEAT = struct.Struct("<QQQQB")  # incarnation, version, global_step, episodes, flags
STATISTICS_TOTALS = struct.Struct("<QQQ")  # incarnation, updates, count
_F32 = np.dtype("<f4")
_F64 = np.dtype("<f8")


class Kind(IntEnum):
    """The message kinds; 1..15 go to a shard, 16.. come from one."""

    GRADIENT = 1
    HELLO = 2
    WORKER_HEARTBEAT = 3
    STATISTICS = 4
    WEIGHTS = 16
    SHARD_HEARTBEAT = 17
    STATISTICS_TOTALS = 18


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


@dataclass(frozen=True)
class Gradient:
    """A slice of a worker's gradient (of the loss: shards descend along it)."""

    shard: int
    worker: str
    base_version: int  # version of the slice the gradient was computed on
    steps: int  # environment steps it covers
    episodes: int  # episodes that ended in those steps
    offset: int
    values: np.ndarray | Payload  # (count,) float32; a Payload when decoded


@dataclass(frozen=True)
class Hello:
    """A worker (re)joining asks for the current weights; ``known_version`` is its newest."""

    shard: int
    worker: str
    known_version: int


@dataclass(frozen=True)
class WorkerHeartbeat:
    """A worker is alive; it relays shard 0's global step and stopping flag, and its score."""

    shard: int
    worker: str
    global_step: int
    stopping: bool
    score: float = float("nan")  # recent mean of checkpoint.best_metric; NaN: none


@dataclass(frozen=True)
class Statistics:
    """Deltas a worker adds to the shared statistics (shard 0 holds their totals)."""

    shard: int
    worker: str
    values: np.ndarray  # (count,) float64; read-only when decoded


@dataclass(frozen=True)
class Weights:
    """A shard's weight slice at ``version``."""

    shard: int
    incarnation: int
    version: int
    global_step: int
    episodes: int
    offset: int
    param_count: int
    values: np.ndarray | Payload  # (count,) float32; a Payload when decoded


@dataclass(frozen=True)
class ShardHeartbeat:
    """A shard is alive: who it is (incarnation), where it is, whether training stops."""

    shard: int
    incarnation: int
    version: int
    global_step: int
    episodes: int
    stopping: bool


@dataclass(frozen=True)
class StatisticsTotals:
    """Shard 0's totals of the shared statistics after ``updates`` deltas."""

    shard: int
    incarnation: int
    updates: int
    values: np.ndarray  # (count,) float64; read-only when decoded


ToShard = Gradient | Hello | WorkerHeartbeat | Statistics
ToWorker = Weights | ShardHeartbeat | StatisticsTotals


_TO_SHARD = (Kind.GRADIENT, Kind.HELLO, Kind.WORKER_HEARTBEAT, Kind.STATISTICS)
_TO_WORKER = (Kind.WEIGHTS, Kind.SHARD_HEARTBEAT, Kind.STATISTICS_TOTALS)


def topic(shard: int) -> bytes:
    """The SUB filter of shard ``shard``'s publications: ``b"ps.0003"`` (fixed width)."""
    return b"ps.%04d" % shard


# -- encoding ---------------------------------------------------------------------------------


def encode(message: ToShard | ToWorker) -> list[Any]:
    """The frames of ``message``; payloads are numpy arrays, for ``send_multipart(copy=False)``.

    Raises ``ValueError`` for a value the wire cannot carry (negative, too large, a bad name).
    """
    m = message
    if isinstance(m, Gradient):
        values, name = _payload(m.values), _name_bytes(m.worker)
        fields = (m.base_version, m.steps, m.episodes, m.offset, values.size, len(name))
        return [_head(Kind.GRADIENT, m.shard, GRADIENT, *fields) + name, *_chunks(values)]
    if isinstance(m, Hello):
        name = _name_bytes(m.worker)
        return [_head(Kind.HELLO, m.shard, HELLO, m.known_version, len(name)) + name]
    if isinstance(m, WorkerHeartbeat):
        name = _name_bytes(m.worker)
        fields = (m.global_step, FLAG_STOPPING if m.stopping else 0, m.score, len(name))
        return [_head(Kind.WORKER_HEARTBEAT, m.shard, WORKER_HEARTBEAT, *fields) + name]
    if isinstance(m, Statistics):
        values, name = _statistics_payload(m.values), _name_bytes(m.worker)
        head = _head(Kind.STATISTICS, m.shard, STATISTICS, values.size, len(name))
        return [head + name, values]
    if isinstance(m, Weights):
        values = _payload(m.values)
        if m.offset + values.size > m.param_count:
            raise ValueError(f"weights: slice ends past param_count {m.param_count}")
        fields = (m.incarnation, m.version, m.global_step, m.episodes, m.offset, values.size)
        return [
            topic(m.shard),
            _head(Kind.WEIGHTS, m.shard, WEIGHTS, *fields, m.param_count),
            *_chunks(values),
        ]
    if isinstance(m, ShardHeartbeat):
        flags = FLAG_STOPPING if m.stopping else 0
        fields = (m.incarnation, m.version, m.global_step, m.episodes, flags)
        return [topic(m.shard), _head(Kind.SHARD_HEARTBEAT, m.shard, SHARD_HEARTBEAT, *fields)]
    if isinstance(m, StatisticsTotals):
        values = _statistics_payload(m.values)
        fields = (m.incarnation, m.updates, values.size)
        return [
            topic(m.shard),
            _head(Kind.STATISTICS_TOTALS, m.shard, STATISTICS_TOTALS, *fields),
            values,
        ]
    raise TypeError(f"not a parameter-server message: {type(m).__name__}")


def _head(kind: Kind, shard: int, body: struct.Struct, *fields: float) -> bytes:
    """The prefix and the kind's fixed fields, packed."""
    try:
        return PREFIX.pack(MAGIC, WIRE_VERSION, kind, shard) + body.pack(*fields)
    except struct.error as exc:
        raise ValueError(f"{kind.name}: a field is out of range ({exc})") from None


def _name_bytes(worker: str) -> bytes:
    raw = worker.encode()
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise ValueError(f"worker: expected a name of 1..{MAX_NAME_BYTES} bytes, got {len(raw)}")
    return raw


def _statistics_payload(values: Any) -> np.ndarray:
    out = _payload(values, _F64)
    if out.size > MAX_STATISTICS_VALUES:
        raise ValueError(f"statistics: {out.size} values > MAX_STATISTICS_VALUES")
    return out


def _chunks(values: np.ndarray) -> list[np.ndarray]:
    """The frames of a float32 payload: views of ``CHUNK_VALUES`` (the vector when smaller)."""
    if values.size <= CHUNK_VALUES:
        return [values]
    return [values[i : i + CHUNK_VALUES] for i in range(0, values.size, CHUNK_VALUES)]


def _payload(values: np.ndarray | Payload, dtype: np.dtype = _F32) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind != "f":
        raise ValueError(f"payload: expected a 1-D float array, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


# -- decoding ---------------------------------------------------------------------------------


def decode_to_shard(frames: Sequence[Any], shard: int) -> ToShard:
    """A worker's message to shard ``shard``, validated; ``ProtocolError`` names what is wrong."""
    if not frames:
        raise ProtocolError("ps.frames", "at least 1 frame", "0 frames")
    raw = _bytes(frames[0])
    kind, got_shard = _prefix(raw, "ps")
    if kind not in _TO_SHARD:
        raise ProtocolError("ps.kind", "GRADIENT, HELLO, WORKER_HEARTBEAT or STATISTICS", kind.name)
    where = f"ps.{kind.name.lower()}"
    if got_shard != shard:
        raise ProtocolError(f"{where}.shard", shard, got_shard)
    if kind == Kind.STATISTICS and shard != 0:
        raise ProtocolError(f"{where}.shard", "0 (only shard 0 holds the statistics)", shard)
    if kind == Kind.GRADIENT:
        base, steps, episodes, offset, count, name_len = _body(raw, GRADIENT, where)
        _frame_count(frames, 1 + chunk_count(count), where)
        worker = _name(raw, GRADIENT, name_len, where)
        values = _chunked(frames[1:], count, where)
        return Gradient(shard, worker, base, steps, episodes, offset, values)
    _frame_count(frames, 2 if kind == Kind.STATISTICS else 1, where)
    if kind == Kind.HELLO:
        known, name_len = _body(raw, HELLO, where)
        return Hello(shard, _name(raw, HELLO, name_len, where), known)
    if kind == Kind.STATISTICS:
        count, name_len = _body(raw, STATISTICS, where)
        _statistics_count(count, where)
        worker = _name(raw, STATISTICS, name_len, where)
        return Statistics(shard, worker, _values(frames[1], count, where, _F64))
    step, flags, score, name_len = _body(raw, WORKER_HEARTBEAT, where)
    _flags(flags, where)
    worker = _name(raw, WORKER_HEARTBEAT, name_len, where)
    return WorkerHeartbeat(shard, worker, step, bool(flags & FLAG_STOPPING), score)


def decode_to_worker(frames: Sequence[Any]) -> ToWorker:
    """A shard's publication, validated (topic, header, payload)."""
    if len(frames) < 2:
        raise ProtocolError("ps.frames", "a topic and a header frame", f"{len(frames)} frames")
    raw = _bytes(frames[1])
    kind, shard = _prefix(raw, "ps")
    if kind not in _TO_WORKER:
        raise ProtocolError("ps.kind", "WEIGHTS, SHARD_HEARTBEAT or STATISTICS_TOTALS", kind.name)
    where = f"ps.{kind.name.lower()}"
    got_topic = _bytes(frames[0])
    if got_topic != topic(shard):
        raise ProtocolError(f"{where}.topic", repr(topic(shard)), repr(got_topic[:16]))
    if kind == Kind.WEIGHTS:
        incarnation, version, step, episodes, offset, count, total = _body(raw, WEIGHTS, where)
        _frame_count(frames, 2 + chunk_count(count), where)
        _exact(raw, WEIGHTS, where)
        _incarnation(incarnation, where)
        if offset + count > total:
            raise ProtocolError(
                f"{where}.count", f"offset + count <= param_count ({total})", offset + count
            )
        values = _chunked(frames[2:], count, where)
        return Weights(shard, incarnation, version, step, episodes, offset, total, values)
    if kind == Kind.STATISTICS_TOTALS:
        _frame_count(frames, 3, where)
        incarnation, updates, count = _body(raw, STATISTICS_TOTALS, where)
        _exact(raw, STATISTICS_TOTALS, where)
        _incarnation(incarnation, where)
        _statistics_count(count, where)
        return StatisticsTotals(shard, incarnation, updates, _values(frames[2], count, where, _F64))
    _frame_count(frames, 2, where)
    incarnation, version, step, episodes, flags = _body(raw, SHARD_HEARTBEAT, where)
    _exact(raw, SHARD_HEARTBEAT, where)
    _incarnation(incarnation, where)
    _flags(flags, where)
    return ShardHeartbeat(shard, incarnation, version, step, episodes, bool(flags & FLAG_STOPPING))


def _bytes(frame: Any) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)


def _buffer(frame: Any) -> memoryview:
    return frame.buffer if hasattr(frame, "buffer") else memoryview(frame)


def _prefix(raw: bytes, where: str) -> tuple[Kind, int]:
    if len(raw) < PREFIX.size:
        raise ProtocolError(f"{where}.header", f"at least {PREFIX.size} bytes", f"{len(raw)} bytes")
    magic, version, kind, shard = PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise ProtocolError(f"{where}.magic", repr(MAGIC), repr(magic))
    if version != WIRE_VERSION:
        raise ProtocolError(f"{where}.version", WIRE_VERSION, version)
    try:
        return Kind(kind), shard
    except ValueError:
        raise ProtocolError(f"{where}.kind", "a known message kind", kind) from None


def _frame_count(frames: Sequence[Any], expected: int, where: str) -> None:
    if len(frames) != expected:
        raise ProtocolError(f"{where}.frames", f"{expected} frames", f"{len(frames)} frames")


def _body(raw: bytes, body: struct.Struct, where: str) -> tuple[int, ...]:
    need = PREFIX.size + body.size
    if len(raw) < need:
        raise ProtocolError(f"{where}.header", f"at least {need} bytes", f"{len(raw)} bytes")
    return body.unpack_from(raw, PREFIX.size)


def _exact(raw: bytes, body: struct.Struct, where: str) -> None:
    need = PREFIX.size + body.size
    if len(raw) != need:
        raise ProtocolError(f"{where}.header", f"{need} bytes", f"{len(raw)} bytes")


def _name(raw: bytes, body: struct.Struct, name_len: int, where: str) -> str:
    start = PREFIX.size + body.size
    if len(raw) != start + name_len:
        raise ProtocolError(
            f"{where}.header",
            f"{start + name_len} bytes (name_len {name_len})",
            f"{len(raw)} bytes",
        )
    return _check_name(raw[start:], f"{where}.worker")


def _check_name(raw: bytes, where: str) -> str:
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise ProtocolError(where, f"1..{MAX_NAME_BYTES} bytes", f"{len(raw)} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(where, "UTF-8 text", repr(raw[:32])) from None


def _chunked(frames: Sequence[Any], count: int, where: str) -> Payload:
    """The float32 payload of ``count`` values in ``frames`` (``chunk_count(count)`` of them)."""
    sizes = [min(CHUNK_VALUES, count - i) for i in range(0, count, CHUNK_VALUES)] or [0]
    return Payload([_values(f, n, where) for f, n in zip(frames, sizes, strict=True)])


def _statistics_count(count: int, where: str) -> None:
    if count > MAX_STATISTICS_VALUES:
        raise ProtocolError(f"{where}.count", f"<= {MAX_STATISTICS_VALUES}", count)


def _values(frame: Any, count: int, where: str, dtype: np.dtype = _F32) -> np.ndarray:
    buffer = _buffer(frame)
    size = dtype.itemsize
    if buffer.nbytes != size * count:
        raise ProtocolError(
            f"{where}.payload",
            f"{size * count} bytes (count {count} {dtype.name})",
            f"{buffer.nbytes} bytes",
        )
    return np.frombuffer(buffer, dtype=dtype)


def _flags(flags: int, where: str) -> None:
    if flags & ~KNOWN_FLAGS:
        raise ProtocolError(f"{where}.flags", f"only bits {KNOWN_FLAGS:#x}", f"{flags:#x}")


def _incarnation(incarnation: int, where: str) -> None:
    if incarnation == 0:
        raise ProtocolError(f"{where}.incarnation", "a non-zero id", 0)
