"""Encoding of the parameter-server wire: a message to its frames, payloads without a copy."""

from __future__ import annotations

import struct
from typing import Any

from relaax_zmq.ps.wire import payload
from relaax_zmq.ps.wire.messages import (
    FLAG_STOPPING,
    GRADIENT,
    HELLO,
    MAGIC,
    MAX_NAME_BYTES,
    PREFIX,
    SHARD_HEARTBEAT,
    STATISTICS,
    STATISTICS_TOTALS,
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


def encode(message: ToShard | ToWorker) -> list[Any]:
    """The frames of ``message``; payloads are numpy arrays, for ``send_multipart(copy=False)``.

    Raises ``ValueError`` for a value the wire cannot carry (negative, too large, a bad name).
    """
    m = message
    if isinstance(m, Gradient):
        values, name = payload.as_payload(m.values), _name_bytes(m.worker)
        fields = (m.base_version, m.steps, m.episodes, m.offset, values.size, len(name))
        return [_head(Kind.GRADIENT, m.shard, GRADIENT, *fields) + name, *payload.split(values)]
    if isinstance(m, Hello):
        name = _name_bytes(m.worker)
        return [_head(Kind.HELLO, m.shard, HELLO, m.known_version, len(name)) + name]
    if isinstance(m, WorkerHeartbeat):
        name = _name_bytes(m.worker)
        fields = (m.global_step, FLAG_STOPPING if m.stopping else 0, m.score, len(name))
        return [_head(Kind.WORKER_HEARTBEAT, m.shard, WORKER_HEARTBEAT, *fields) + name]
    if isinstance(m, Statistics):
        values, name = payload.statistics_payload(m.values), _name_bytes(m.worker)
        head = _head(Kind.STATISTICS, m.shard, STATISTICS, values.size, len(name))
        return [head + name, values]
    if isinstance(m, Weights):
        values = payload.as_payload(m.values)
        if m.offset + values.size > m.param_count:
            raise ValueError(f"weights: slice ends past param_count {m.param_count}")
        fields = (m.incarnation, m.version, m.global_step, m.episodes, m.offset, values.size)
        return [
            topic(m.shard),
            _head(Kind.WEIGHTS, m.shard, WEIGHTS, *fields, m.param_count),
            *payload.split(values),
        ]
    if isinstance(m, ShardHeartbeat):
        flags = FLAG_STOPPING if m.stopping else 0
        fields = (m.incarnation, m.version, m.global_step, m.episodes, flags)
        return [topic(m.shard), _head(Kind.SHARD_HEARTBEAT, m.shard, SHARD_HEARTBEAT, *fields)]
    if isinstance(m, StatisticsTotals):
        values = payload.statistics_payload(m.values)
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
