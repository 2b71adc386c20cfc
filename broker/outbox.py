"""Everything the broker sends: non-blocking, counted, and dropped (with a throttled warning)
when it cannot be delivered.

The sockets are the broker's (``Broker.run`` opens and closes them and sets them
here); while they are unset every send is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import zmq

from relaax_zmq.protocol import ErrorCode, encode, link, messages
from relaax_zmq.protocol.limits import Limits
from relaax_zmq.protocol.link import Command

from .stats import Counters

# the daemon's log name, the same for every module of the broker
log = logging.getLogger(__name__)

# plain ints: pyzmq's flag enums cost microseconds per frame on the hot path
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)


class Throttle:
    """At most one warning per ``period`` seconds; the others are counted and summarised."""

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, text: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.period:
            self._suppressed += 1
            return
        if self._suppressed:
            text += f" (and {self._suppressed} similar warnings)"
            self._suppressed = 0
        self._last = now
        log.warning(text, *args)


class Outbox:
    """Sends to clients (frontend) and workers (backend), counting what is dropped."""

    def __init__(self, counters: Counters, limits: Limits) -> None:
        self.counters = counters
        self.limits = limits
        self.frontend: zmq.Socket | None = None
        self.backend: zmq.Socket | None = None
        self.throttle = Throttle()

    def send(self, sock: zmq.Socket | None, frames: Sequence[Any]) -> bool:
        """Send a multipart message without blocking; False (warned) when it was dropped."""
        if sock is None:
            return False
        try:
            # ROUTER_MANDATORY and a full queue fail on the first frame, never midway
            last = len(frames) - 1
            for i, frame in enumerate(frames):
                sock.send(frame, _NOBLOCK_MORE if i < last else _NOBLOCK, copy=False)
            return True
        except zmq.Again:
            reason = "queue full"
        except zmq.ZMQError as exc:
            reason = str(exc)
            if exc.errno == zmq.EHOSTUNREACH and sock is self.frontend:
                # a client that left (after close, or vanished) is routine, not a warning
                log.debug("reply to a client that left dropped: %s", reason)
                return False
        peer = bytes(frames[0]) if frames else b""
        self.throttle.warn("send to %r dropped: %s", peer[:32], reason)
        return False

    def reply(self, identity: bytes, frames: Sequence[Any]) -> None:
        """Send an RLX message to a client; count it, or count it dropped."""
        if self.send(self.frontend, [identity, *frames]):
            self.counters.replies += 1
        else:
            self.counters.dropped_replies += 1

    def send_backend(self, identity: bytes, frames: Sequence[Any]) -> bool:
        """Send link frames to a worker; count them dropped when they cannot go."""
        if self.send(self.backend, [identity, *frames]):
            return True
        self.counters.dropped_link += 1
        return False

    def control(self, identity: bytes, command: Command, **body: Any) -> None:
        """A link control message (ASSIGN, RELEASE, RESTART, ...) to a worker."""
        self.send_backend(identity, link.control(command, **body))

    def error(
        self,
        identity: bytes,
        code: ErrorCode,
        text: str,
        *,
        sequence: int = 0,
        session_id: int = 0,
        session_count: int = 0,
        restart: bool = False,
        versions: Sequence[int] | None = None,
    ) -> None:
        """An RLX error reply to a client, counted by code."""
        self.counters.error(code)
        message = messages.error(
            code,
            text,
            sequence=sequence,
            session_id=session_id,
            session_count=session_count,
            versions=versions,
            restart=restart,
        )
        self.reply(identity, encode(message, self.limits))
