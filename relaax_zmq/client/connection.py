"""The RLX request/reply channel of a client: one DEALER, one request at a time.

``request`` stamps a message with a fresh sequence, sends it and waits for the
reply carrying the same sequence, discarding stale replies (other sequences).
When no reply comes in time the socket is thrown away (linger 0, so nothing it
still queues is ever sent) and a new one is opened: the "Lazy Pirate" pattern.
The caller decides what to do next (resume its block, retry, give up).
"""

from __future__ import annotations

import itertools
import logging
import random
import time

import zmq

from relaax_zmq import protocol
from relaax_zmq.errors import AgentError
from relaax_zmq.protocol.constants import type_name
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.runtime.sockets import SocketSpec, open_socket
from relaax_zmq.security import CurveSpec

log = logging.getLogger(__name__)

#: Largest message a client accepts unless told otherwise (``protocol.max_message_bytes``).
DEFAULT_MAX_MESSAGE_BYTES = 1 << 30


class RequestTimeout(AgentError):
    """No reply came within the request timeout (``code`` is None); the socket was reopened."""

    def __init__(self, timeout: float, what: str) -> None:
        super().__init__(None, f"no reply to {what} within {timeout:g} s")


def client_spec(
    endpoint: str,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    curve: CurveSpec | None = None,
) -> SocketSpec:
    """The ``client.frontend`` socket for ``endpoint`` (as ``sockets.socket_map`` builds it)."""
    return SocketSpec(
        "client.frontend", zmq.DEALER, endpoint, False, max_message_bytes, curve=curve
    )


class Connection:
    """A DEALER connected to the broker's frontend, with reply matching and reopen on timeout."""

    def __init__(
        self,
        spec: SocketSpec,
        *,
        timeout: float = 10.0,
        context: zmq.Context | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.spec = spec
        self.timeout = timeout
        self.limits = limits
        self._context = context if context is not None else zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        # a random start keeps sequences of successive clients apart in logs and captures
        self._sequences = itertools.count(random.randrange(1, 1 << 32))
        self.reopened = 0  #: how many times a timeout replaced the socket

    @property
    def is_open(self) -> bool:
        return self._socket is not None

    def open(self) -> None:
        """Open and connect the socket (no-op when it is open)."""
        if self._socket is None:
            self._socket = open_socket(self._context, self.spec)

    def close(self, linger: float = 0.0) -> None:
        """Close the socket; messages still queued get ``linger`` seconds to leave."""
        if self._socket is not None:
            self._socket.close(linger=int(linger * 1000))
            self._socket = None

    def reopen(self) -> None:
        """Throw the socket away (dropping whatever it queued) and open a new one."""
        self.close(0.0)
        self.open()
        self.reopened += 1

    def send(self, message: Message) -> int:
        """Send without waiting for a reply; returns the sequence used."""
        self.open()
        message.sequence = next(self._sequences)
        frames = protocol.encode(message, self.limits)
        try:
            self._socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)  # type: ignore[union-attr]
        except zmq.Again:
            self.reopen()
            raise RequestTimeout(0.0, _what(message)) from None
        return message.sequence

    def request(self, message: Message) -> Message:
        """Send ``message`` and return its reply.

        Raises:
            RequestTimeout: no reply within ``timeout`` (the socket has been reopened).
            ProtocolError: the reply is not valid RLX.
        """
        sequence = self.send(message)
        deadline = time.monotonic() + self.timeout
        sock = self._socket
        assert sock is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                if time.monotonic() < deadline:
                    continue
                log.warning(
                    "no reply to %s within %g s: reopening the socket", _what(message), self.timeout
                )
                self.reopen()
                raise RequestTimeout(self.timeout, _what(message))
            frames = sock.recv_multipart(copy=False)
            reply = protocol.decode(frames, self.limits)
            if reply.sequence == sequence:
                return reply
            log.debug("discarding a stale reply %r (waiting for sequence %d)", reply, sequence)


def _what(message: Message) -> str:
    return type_name(message.type)
