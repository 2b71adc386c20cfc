"""The RLX channel of a client over a WebSocket to the gateway (``ws://`` or ``wss://``).

``WebSocketConnection`` is ``connection.Connection``'s twin for a gateway URL: the same
``send``/``request`` with reply matching by sequence and a fresh connection after a
timeout, so ``BlockProxy`` and its subclasses work unchanged through the gateway.
It drives websockets' Sans-I/O protocol over a blocking socket in the caller's thread
(no background thread, no event loop): one write and one read per round trip.
Messages travel in the envelope of docs/protocol.md, section 8.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import socket
import ssl
import time

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from relaax_zmq import protocol
from relaax_zmq.client.connection import RequestTimeout, _what
from relaax_zmq.errors import AgentError
from relaax_zmq.protocol.constants import ErrorCode
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.websocket import SUBPROTOCOL, TOKEN_PREFIX, pack, unpack

log = logging.getLogger(__name__)

_READ = 1 << 16


#: close codes after which reconnecting cannot help: the client broke a rule
_FATAL_CLOSES = {1002: ErrorCode.MALFORMED, 1003: ErrorCode.MALFORMED, 1009: ErrorCode.TOO_LARGE}
#: handshake refusals: what the HTTP status means as an RLX error code
_REFUSALS = {
    400: ErrorCode.MALFORMED,
    401: ErrorCode.AUTH,
    403: ErrorCode.AUTH,
    404: ErrorCode.MALFORMED,
}


class GatewayUnreachable(RequestTimeout):
    """The gateway could not be reached or dropped the connection (``code`` None): like a
    timeout, ``BlockProxy`` reconnects and resumes its block."""

    def __init__(self, text: str) -> None:
        AgentError.__init__(self, None, text)


def is_websocket_url(endpoint: str) -> bool:
    """True for ``ws://`` and ``wss://`` endpoints (the gateway), False for ZeroMQ ones."""
    return endpoint.startswith(("ws://", "wss://"))


class WebSocketConnection:
    """A WebSocket to the gateway with reply matching and reconnect on timeout.

    Args:
        url: the gateway's endpoint (``ws://127.0.0.1:7800/rlx``).
        token: the gateway's access token (``gateway.token``), offered at the handshake.
        timeout: seconds to wait for a reply (and for the handshake).
        limits: decoder limits of replies.
        max_message_bytes: the largest reply accepted.
        ssl_context: TLS settings of a ``wss://`` URL (default: the system's CAs).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        limits: Limits = DEFAULT_LIMITS,
        max_message_bytes: int = 1 << 30,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.uri = parse_uri(url)
        self.token = token
        self.timeout = timeout
        self.limits = limits
        self.max_message_bytes = max_message_bytes
        self.ssl_context = ssl_context
        self._max_frames = 2 + limits.max_tensors
        self._socket: socket.socket | None = None
        self._protocol: ClientProtocol | None = None
        self._sequences = itertools.count(random.randrange(1, 1 << 32))
        self.reopened = 0  #: how many times a timeout replaced the connection

    @property
    def is_open(self) -> bool:
        return self._socket is not None

    def open(self) -> None:
        """Connect and complete the WebSocket handshake (no-op when open)."""
        if self._socket is not None:
            return
        uri = self.uri
        try:
            sock = socket.create_connection((uri.host, uri.port), timeout=self.timeout)
        except OSError as exc:
            raise GatewayUnreachable(f"cannot connect to {uri.host}:{uri.port}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if uri.secure:
            context = self.ssl_context or ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=uri.host)
            except ssl.SSLError as exc:  # an untrusted certificate: retrying cannot help
                sock.close()
                text = f"TLS with {uri.host}:{uri.port} failed: {exc}"
                raise AgentError(ErrorCode.AUTH, text) from None
        offered = [SUBPROTOCOL] + ([TOKEN_PREFIX + self.token] if self.token else [])
        proto = ClientProtocol(uri, subprotocols=offered, max_size=2 * self.max_message_bytes)
        proto.send_request(proto.connect())
        self._socket, self._protocol = sock, proto
        try:
            self._flush()
            self._handshake()
        except BaseException:
            self.close()
            raise

    def _handshake(self) -> None:
        assert self._protocol is not None
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self._protocol.events_received():
                if isinstance(event, Response):
                    if self._protocol.handshake_exc is not None:
                        raise _refused(event, self._protocol.handshake_exc)
                    return
            self._read(deadline)

    def close(self, linger: float = 0.0) -> None:
        """Close the connection (a close frame first when ``linger`` > 0)."""
        if self._socket is None:
            return
        if linger > 0 and self._protocol is not None:
            with contextlib.suppress(OSError):
                self._protocol.send_close(1000)
                self._socket.settimeout(linger)
                self._flush()
        self._socket.close()
        self._socket = self._protocol = None

    def reopen(self) -> None:
        """Throw the connection away and open a new one."""
        self.close()
        self.open()
        self.reopened += 1

    def send(self, message: Message) -> int:
        """Send without waiting for a reply; returns the sequence used."""
        self.open()
        assert self._protocol is not None
        message.sequence = next(self._sequences)
        self._protocol.send_binary(pack(protocol.encode(message, self.limits)))
        try:
            self._flush()
        except OSError as exc:
            self.close()
            raise GatewayUnreachable(f"the gateway connection failed: {exc}") from None
        return message.sequence

    def request(self, message: Message) -> Message:
        """Send ``message`` and return its reply.

        Raises:
            RequestTimeout: no reply within ``timeout`` (the connection was replaced).
            AgentError: the gateway closed the connection (its code and reason).
            ProtocolError: the reply is not valid RLX.
        """
        sequence = self.send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            data = self._next_message(deadline, message)
            reply = protocol.decode(unpack(data, self._max_frames), self.limits)
            if reply.sequence == sequence:
                return reply
            log.debug("discarding a stale reply %r (waiting for sequence %d)", reply, sequence)

    def _next_message(self, deadline: float, message: Message) -> bytes:
        assert self._protocol is not None
        parts: list[bytes] = []
        while True:
            for event in self._protocol.events_received():
                if not isinstance(event, Frame):
                    continue
                if event.opcode == Opcode.CLOSE:
                    self._closed_by_peer()
                if event.opcode in (Opcode.BINARY, Opcode.CONT):
                    parts.append(event.data)
                    if event.fin:
                        return b"".join(parts)
            self._flush()  # pongs to the gateway's pings
            try:
                self._read(deadline)
            except TimeoutError:
                log.warning(
                    "no reply to %s within %g s: reconnecting", _what(message), self.timeout
                )
                self.reopen()
                raise RequestTimeout(self.timeout, _what(message)) from None

    def _read(self, deadline: float) -> None:
        assert self._socket is not None and self._protocol is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._socket.settimeout(left)
        try:
            data = self._socket.recv(_READ)
        except TimeoutError:
            raise TimeoutError from None
        except OSError as exc:
            self.close()
            raise GatewayUnreachable(f"the gateway connection failed: {exc}") from None
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
            self._closed_by_peer()

    def _flush(self) -> None:
        assert self._socket is not None and self._protocol is not None
        for chunk in self._protocol.data_to_send():
            if chunk:
                self._socket.sendall(chunk)

    def _closed_by_peer(self) -> None:
        assert self._protocol is not None
        code, reason = self._protocol.close_code, self._protocol.close_reason
        self.close()
        text = f"the gateway closed the connection: {code} {reason}".rstrip()
        if code in _FATAL_CLOSES:
            raise AgentError(_FATAL_CLOSES[code], text)
        raise GatewayUnreachable(text)


def _refused(response: Response, exc: Exception) -> AgentError:
    """The gateway's refusal of the handshake, with its status and text: AUTH for a missing
    token or a foreign origin, MALFORMED for a wrong path or subprotocol; anything else
    (503: full; a proxy's 502) may pass, so the client retries."""
    body = response.body.decode("utf-8", "replace").strip() if response.body else ""
    status = response.status_code
    text = f"the gateway refused the connection: {status} {body or exc}"
    if status in _REFUSALS:
        return AgentError(_REFUSALS[status], text)
    return GatewayUnreachable(text)
