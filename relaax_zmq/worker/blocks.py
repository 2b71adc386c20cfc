"""What a session host holds and answers: blocks, requests and replies, metric figures, counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from relaax_zmq.protocol.message import Message

#: Called with (session_id, scalars, histograms) for every METRICS request.
MetricsSink = Callable[[int, dict[str, float], dict[str, np.ndarray]], None]


class Request(NamedTuple):
    """A decoded RLX request and an opaque routing key handed back with its reply."""

    key: Any
    message: Message


class Reply(NamedTuple):
    """The reply to the request with the same ``key``."""

    key: Any
    message: Message


@dataclass
class Block:
    """A block of ``count`` sessions: ids ``session_id .. session_id + count - 1``."""

    session_id: int
    count: int
    exploit: bool = False
    #: the replies of the block's next drain carry RESTART (re-homed with ``restart``)
    restart_pending: bool = False

    @property
    def session_ids(self) -> np.ndarray:
        return np.arange(self.session_id, self.session_id + self.count, dtype=np.uint64)


@dataclass
class MetricStat:
    """The latest value a metric name reported and how many times it was reported."""

    last: Any
    count: int = 0


@dataclass(slots=True)
class HostCounters:
    """What the host counts (its ``stats`` and the worker's heartbeats carry them by name)."""

    requests: int = 0
    batches: int = 0  # Agent.act calls that returned actions
    steps: int = 0  # session steps in those calls
    errors: int = 0  # error replies
    restarts: int = 0  # blocks whose replies carried RESTART after a re-homing
