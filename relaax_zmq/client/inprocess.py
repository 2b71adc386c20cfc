"""The in-process path: a client channel straight into a worker's ``SessionHost``.

Every request is encoded, answered by ``SessionHost.handle_frames`` (which
also plays the broker's part, init, close and heartbeat, on the broker's
session table, where each connection owns its blocks as a client connection
does) and the reply decoded, so the bytes are exactly those of the broker
path, without sockets or processes. Proxies take it as ``connection=``
(``AgentProxy.in_process``): the same seeded run through this path and through
a broker must give identical trajectories (tests/test_exchange_paths.py).
"""

from __future__ import annotations

import itertools

from relaax_zmq import protocol
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.worker.host import SessionHost

_identities = itertools.count(1)


class InProcessConnection:
    """``Connection``'s interface over a ``SessionHost`` in this thread."""

    def __init__(self, host: SessionHost, limits: Limits = DEFAULT_LIMITS) -> None:
        self.host = host
        self.limits = limits
        #: the client identity the host's session table knows this connection by
        self.identity = b"in-process-%d" % next(_identities)
        self.reopened = 0
        self._open = False
        self._sequences = itertools.count(1)

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self, linger: float = 0.0) -> None:
        self._open = False

    def reopen(self) -> None:
        self.reopened += 1
        self._open = True

    def send(self, message: Message) -> int:
        """Deliver without waiting for the reply (which is dropped, as a DEALER would)."""
        self.request(message)
        return message.sequence

    def request(self, message: Message) -> Message:
        self.open()
        message.sequence = next(self._sequences)
        frames = protocol.encode(message, self.limits)
        return protocol.decode(self.host.handle_frames(frames, self.identity), self.limits)
