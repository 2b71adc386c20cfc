"""The requests of one drain, answered together by one ``SessionHost.handle`` call.

The worker's loop adds each decoded request as it reads it (``add`` says when
``max_batch`` sessions of updates wait: the drain stops reading) and flushes
before a control message about a block it holds (``holds``) and at the end of
the drain. ``latency`` is each request's time from arrival to its reply sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relaax_zmq.metrics import RunningMean
from relaax_zmq.protocol.constants import MessageType
from relaax_zmq.protocol.message import Message
from relaax_zmq.worker.host import Request, SessionHost

#: Sends one reply: (the request's key, the reply).
Send = Callable[[Any, Message], None]


class Batcher:
    """Pending requests for ``host``; at most ``max_batch`` sessions of updates per drain."""

    def __init__(self, host: SessionHost, max_batch: int) -> None:
        self.host = host
        self.max_batch = max_batch
        #: seconds from a request's arrival to its reply sent, since the last ``take``
        self.latency = RunningMean()
        self._requests: list[Request] = []
        self._received: list[float] = []  # arrival time of each pending request
        self._blocks: set[int] = set()
        #: sessions of the pending updates
        self.sessions = 0

    def add(self, key: Any, message: Message, received: float) -> bool:
        """Queue a decoded request that arrived at ``received`` (``time.perf_counter``);
        True when ``max_batch`` sessions of updates now wait."""
        self._requests.append(Request(key, message))
        self._received.append(received)
        self._blocks.add(message.session_id)
        if message.type == MessageType.UPDATE:
            self.sessions += message.session_count
        return self.sessions >= self.max_batch

    def holds(self, session_id: int) -> bool:
        """Whether a request of block ``session_id`` waits."""
        return session_id in self._blocks

    def flush(self, send: Send) -> bool:
        """Answer every pending request through the host, ``send`` each reply; False when
        nothing was pending."""
        if not self._requests:
            return False
        requests, received = self._requests, self._received
        self.clear()
        for key, reply in self.host.handle(requests):
            send(key, reply)
        done = time.perf_counter()
        self.latency.extend(done - t for t in received)
        return True

    def clear(self) -> None:
        """Forget the pending requests unanswered (the worker registers again)."""
        self._requests = []
        self._received = []
        self._blocks = set()
        self.sessions = 0
