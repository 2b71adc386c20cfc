"""Decoding of the parameter-server wire: every field checked, ``ProtocolError`` naming the first
wrong one (``ps.<kind>.<field>``); payloads come back as read-only views on the frames."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps.wire.messages import (
    FLAG_STOPPING,
    GRADIENT,
    HELLO,
    KNOWN_FLAGS,
    MAGIC,
    MAX_NAME_BYTES,
    PREFIX,
    SHARD_HEARTBEAT,
    STATISTICS,
    STATISTICS_TOTALS,
    TO_SHARD,
    TO_WORKER,
    WEIGHTS,
    WIRE_VERSION,
    WORKER_HEARTBEAT,
    Gradient,
    Hello,
    Kind,
    ShardHeartbeat,
    Statistics,
    StatisticsTotals,
    ToShard,
    ToWorker,
    Weights,
    WorkerHeartbeat,
    topic,
)
from relaax_zmq.ps.wire.payload import (
    F64,
    check_statistics_count,
    chunk_count,
    join,
    read_values,
)


def decode_to_shard(frames: Sequence[Any], shard: int) -> ToShard:
    """A worker's message to shard ``shard``, validated; ``ProtocolError`` names what is wrong."""
    if not frames:
        raise ProtocolError("ps.frames", "at least 1 frame", "0 frames")
    raw = _bytes(frames[0])
    kind, got_shard = _prefix(raw, "ps")
    if kind not in TO_SHARD:
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
        values = join(frames[1:], count, where)
        return Gradient(shard, worker, base, steps, episodes, offset, values)
    _frame_count(frames, 2 if kind == Kind.STATISTICS else 1, where)
    if kind == Kind.HELLO:
        known, name_len = _body(raw, HELLO, where)
        return Hello(shard, _name(raw, HELLO, name_len, where), known)
    if kind == Kind.STATISTICS:
        count, name_len = _body(raw, STATISTICS, where)
        check_statistics_count(count, where)
        worker = _name(raw, STATISTICS, name_len, where)
        return Statistics(shard, worker, read_values(frames[1], count, where, F64))
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
    if kind not in TO_WORKER:
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
        values = join(frames[2:], count, where)
        return Weights(shard, incarnation, version, step, episodes, offset, total, values)
    if kind == Kind.STATISTICS_TOTALS:
        _frame_count(frames, 3, where)
        incarnation, updates, count = _body(raw, STATISTICS_TOTALS, where)
        _exact(raw, STATISTICS_TOTALS, where)
        _incarnation(incarnation, where)
        check_statistics_count(count, where)
        values = read_values(frames[2], count, where, F64)
        return StatisticsTotals(shard, incarnation, updates, values)
    _frame_count(frames, 2, where)
    incarnation, version, step, episodes, flags = _body(raw, SHARD_HEARTBEAT, where)
    _exact(raw, SHARD_HEARTBEAT, where)
    _incarnation(incarnation, where)
    _flags(flags, where)
    return ShardHeartbeat(shard, incarnation, version, step, episodes, bool(flags & FLAG_STOPPING))


def _bytes(frame: Any) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)


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


def _flags(flags: int, where: str) -> None:
    if flags & ~KNOWN_FLAGS:
        raise ProtocolError(f"{where}.flags", f"only bits {KNOWN_FLAGS:#x}", f"{flags:#x}")


def _incarnation(incarnation: int, where: str) -> None:
    if incarnation == 0:
        raise ProtocolError(f"{where}.incarnation", "a non-zero id", 0)
