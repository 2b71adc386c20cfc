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
or float64 (statistics), sent without a copy and read back as read-only numpy views on
the frames. Every decoder checks every field and raises ``ProtocolError`` naming the
first wrong one; nothing is ever unpickled.

The modules, by job: ``messages`` (the dataclasses, ``Kind`` and the header layout),
``payload`` (``Payload``, chunking; ``CHUNK_VALUES`` is read there at call time, so set
``wire.payload.CHUNK_VALUES`` for small frames), ``encoding`` (``encode``) and
``decoding`` (``decode_to_shard``, ``decode_to_worker``). Every name is used as
``wire.X`` from this package.
"""

from relaax_zmq.ps.wire.decoding import decode_to_shard, decode_to_worker
from relaax_zmq.ps.wire.encoding import encode
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
    CHUNK_VALUES,
    MAX_FRAME_BYTES,
    MAX_STATISTICS_VALUES,
    Payload,
    chunk_count,
)

__all__ = [
    "CHUNK_VALUES",
    "FLAG_STOPPING",
    "GRADIENT",
    "HELLO",
    "KNOWN_FLAGS",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "MAX_NAME_BYTES",
    "MAX_STATISTICS_VALUES",
    "PREFIX",
    "SHARD_HEARTBEAT",
    "STATISTICS",
    "STATISTICS_TOTALS",
    "WEIGHTS",
    "WIRE_VERSION",
    "WORKER_HEARTBEAT",
    "Gradient",
    "Hello",
    "Kind",
    "Payload",
    "ShardHeartbeat",
    "Statistics",
    "StatisticsTotals",
    "ToShard",
    "ToWorker",
    "Weights",
    "WorkerHeartbeat",
    "chunk_count",
    "decode_to_shard",
    "decode_to_worker",
    "encode",
    "topic",
]
