"""The parameter-server wire's messages (dataclasses) and the layout of their headers.

Every header starts with the same 8 bytes (``PREFIX``: magic, wire version, kind,
shard) followed by the kind's fixed little-endian fields (the ``struct.Struct`` named
after the kind); worker messages end with the worker's UTF-8 name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from relaax_zmq.ps.wire.payload import Payload

MAGIC = b"RXPS"
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


class Kind(IntEnum):
    """The message kinds; 1..15 go to a shard, 16.. come from one."""

    GRADIENT = 1
    HELLO = 2
    WORKER_HEARTBEAT = 3
    STATISTICS = 4
    WEIGHTS = 16
    SHARD_HEARTBEAT = 17
    STATISTICS_TOTALS = 18


TO_SHARD = (Kind.GRADIENT, Kind.HELLO, Kind.WORKER_HEARTBEAT, Kind.STATISTICS)
TO_WORKER = (Kind.WEIGHTS, Kind.SHARD_HEARTBEAT, Kind.STATISTICS_TOTALS)


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


def topic(shard: int) -> bytes:
    """The SUB filter of shard ``shard``'s publications: ``b"ps.0003"`` (fixed width)."""
    return b"ps.%04d" % shard
