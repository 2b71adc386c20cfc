"""``ExperienceLink``: an actor's PUSH sockets to the learners (unrolls) or the replay
servers (transitions), the ``relaax_zmq.core.ExperienceSink`` a worker hands its agent.

Messages go round-robin over the targets (learner i, replay server i). A pipe holds at
most ``queue_mib`` of messages at each end: ZeroMQ counts messages, so each socket is
opened at the first send, when the size of a message is known (an algorithm's messages
all have the same fields and shapes), with ``experience_hwm`` as its high-water mark.
A full pipe blocks ``send`` (the learner's pace slows the actors down) for at most
``send_timeout`` seconds; then the message is dropped and counted, and for the next
``STALL_BACKOFF`` x ``send_timeout`` seconds messages to that target that find no room are
dropped at once, without waiting: a learner that is down (restarting) costs an actor one
wait per backoff period, not one per message. Sockets queue only on completed
connections (``IMMEDIATE``): nothing piles up for a learner that is down.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.learner import wire
from relaax_zmq.runtime.sockets import SocketSpec, experience_hwm, open_socket, socket_map

log = logging.getLogger(__name__)

#: After a drop, sends to that target wait for room again only after this many timeouts.
STALL_BACKOFF = 5


@dataclass
class SinkCounters:
    """What an actor's experience link counts (the worker's stats show them)."""

    sent: int = 0  # messages queued
    sent_items: int = 0  # unrolls or transitions in them
    sent_bytes: int = 0
    dropped: int = 0  # messages dropped after send_timeout on a full queue
    blocked_ms: float = 0.0  # time send spent waiting for room


class ExperienceLink:
    """An ``ExperienceSink`` over PUSH sockets (see the module docstring).

    Args:
        config: the app config (``learner`` or ``replay`` sections).
        target: ``"learner"`` (unrolls to every learner) or ``"replay"`` (transitions to
            every replay server).
        source: the sender's name in each message's header.
        context: ZeroMQ context (the worker's).
        inproc: connect over ``inproc://``.
    """

    def __init__(
        self,
        config: AppConfig,
        target: Literal["learner", "replay"],
        source: str,
        context: zmq.Context,
        *,
        inproc: bool = False,
    ) -> None:
        specs = socket_map(config, inproc=inproc)
        if target == "learner":
            count, section = config.learner.count, config.learner
            self.kind = "unrolls"
        else:
            count, section = config.replay.shards, config.replay
            self.kind = "transitions"
        self.specs: list[SocketSpec] = [specs[f"worker.{target}[{i}]"] for i in range(count)]
        self.queue_bytes = int(section.queue_mib * (1 << 20))
        self.timeout_ms = int(section.send_timeout * 1000)
        self.source = source
        self.counters = SinkCounters()
        self._context = context
        self._sockets: list[zmq.Socket | None] = [None] * count
        self._quiet_until = [0.0] * count  # no waiting for room before (monotonic)
        self._next = 0

    def send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool:
        """Queue one message to the next target; False: dropped after ``send_timeout``."""
        message = wire.TensorMessage(
            self.kind, fields, self.source, max(0, int(version)), steps, episodes
        )
        frames = wire.encode(message)
        index = self._next
        self._next = (index + 1) % len(self.specs)
        sock = self._socket(index, message.nbytes)
        counters = self.counters
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            start = time.monotonic()
            stalled = start < self._quiet_until[index]
            waited = not stalled and sock.poll(self.timeout_ms, zmq.POLLOUT)
            counters.blocked_ms += (time.monotonic() - start) * 1000
            try:
                if not waited:
                    raise zmq.Again
                sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                if not stalled:
                    self._quiet_until[index] = (
                        time.monotonic() + STALL_BACKOFF * self.timeout_ms / 1000
                    )
                counters.dropped += 1
                if counters.dropped in (1, 10, 100) or counters.dropped % 1000 == 0:
                    log.warning(
                        "%s %d queue full for %.1f s: dropped %d messages so far",
                        self.kind, index, self.timeout_ms / 1000, counters.dropped,
                    )  # fmt: skip
                return False
        counters.sent += 1
        counters.sent_items += len(next(iter(fields.values()))) if fields else 0
        counters.sent_bytes += message.nbytes
        return True

    def _socket(self, index: int, message_bytes: int) -> zmq.Socket:
        sock = self._sockets[index]
        if sock is None:
            spec = dataclasses.replace(
                self.specs[index], hwm=experience_hwm(self.queue_bytes, message_bytes)
            )
            sock = self._sockets[index] = open_socket(self._context, spec)
        return sock

    def stats(self) -> dict[str, float]:
        return dataclasses.asdict(self.counters)

    def close(self) -> None:
        for i, sock in enumerate(self._sockets):
            if sock is not None:
                sock.close(linger=0)
            self._sockets[i] = None
