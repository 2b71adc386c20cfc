"""A shard's PUB side: pooled weight buffers, pacing, and sends that never block.

Weights go out as a copy (ZeroMQ sends them later while the slice keeps changing) in a
buffer from a small pool, reused once ZeroMQ's trackers say every frame left (a fresh
buffer of tens of megabytes costs page faults). A busy shard spends at most
``PUBLISH_SHARE`` of its time publishing: after a publication that took t seconds the
next waits (1 / PUBLISH_SHARE - 1) * t, so a large slice goes out less often than every
update and a small one after every drain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from relaax_zmq.ps import wire

log = logging.getLogger("relaax_zmq.ps.shard")

#: Publication buffers reused once ZeroMQ has let go of them.
PUBLISH_BUFFERS = 4
#: Most of its time a busy shard spends publishing weights (module docstring).
PUBLISH_SHARE = 0.2


class Publisher:
    """Publishes on ``pub`` for shard ``shard`` of a slice of ``count`` values."""

    def __init__(self, pub: zmq.Socket, shard: int, count: int) -> None:
        self.pub = pub
        self.shard = shard
        self.count = count
        self.version = -1  # the last version published
        self.at = -float("inf")  # when
        self.gap = 0.0  # seconds until the next publication of weights may go
        self._buffers: list[tuple[np.ndarray, list[zmq.MessageTracker] | None]] = []

    def due(self, now: float) -> bool:
        """The pacing allows weights to go now."""
        return now >= self.at + self.gap

    def wait(self, now: float) -> float:
        """Seconds until weights may go."""
        return max(0.0, self.at + self.gap - now)

    def weights(self, message: Callable[[np.ndarray], wire.Weights], now: float) -> bool:
        """Send ``message(buffer)`` (it fills the buffer with the slice); False if refused."""
        started = time.perf_counter()
        slot, values = self._buffer()
        weights = message(values)
        trackers = self.send(weights, track=True)
        if slot is not None:
            self._buffers[slot] = (values, trackers)
        self.gap = (time.perf_counter() - started) * (1 / PUBLISH_SHARE - 1)
        self.version, self.at = weights.version, now
        return trackers is not None

    def _buffer(self) -> tuple[int | None, np.ndarray]:
        """A pooled buffer ZeroMQ is done with, else a new one, with its pool slot (None: a
        one-off while the whole pool is held by slow subscribers' queues)."""
        for slot, (values, trackers) in enumerate(self._buffers):
            if trackers is None or all(t.done for t in trackers):
                return slot, values
        values = np.empty(self.count, np.float32)
        if len(self._buffers) < PUBLISH_BUFFERS:
            self._buffers.append((values, None))
            return len(self._buffers) - 1, values
        return None, values

    def send(self, message: wire.ToWorker, *, track: bool = False) -> Any:
        """Send ``message`` without blocking; with ``track`` its frames' trackers, else True;
        None when the PUB refused it (logged)."""
        frames = wire.encode(message)
        trackers = []
        try:
            for i, frame in enumerate(frames):
                more = zmq.SNDMORE if i < len(frames) - 1 else 0
                trackers.append(self.pub.send(frame, zmq.NOBLOCK | more, copy=False, track=track))
        except zmq.ZMQError as exc:
            log.warning("shard %d: publishing failed: %s", self.shard, exc)
            return None
        return trackers if track else True
