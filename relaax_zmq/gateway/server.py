"""The gateway daemon's server: WebSocket connections in, one broker client each out.

``Gateway.run`` serves until a ``StopFlag`` is set: it listens on ``gateway.host:port``
(TLS when ``tls_cert`` is set), lets ``handshake.Handshake`` decide who connects, and
gives each connection a ``bridge.Bridge`` with its own DEALER to ``broker.frontend``
(CURVE client keys when the app has security on). On stop it closes every connection
with 1001 (going away) and their blocks at the broker.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import zmq
from websockets.asyncio.server import ServerConnection, serve

from relaax_zmq.config import AppConfig
from relaax_zmq.protocol.websocket import packed_size
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.sockets import open_socket, socket_map

from .bridge import Bridge, BridgeLimits
from .budget import ConnectionBudget
from .handshake import Handshake, select_subprotocol

log = logging.getLogger(__name__)

#: Seconds between looks at the stop flag.
STOP_POLL = 0.1
#: Kernel send buffer of each connection: replies are small (actions), and a client that
#: does not read fills this much, then the write buffer, then is closed (``send_timeout``).
SEND_BUFFER_BYTES = 64 << 10
#: File descriptors one connection holds: its TCP socket, its DEALER's connection and the
#: DEALER's mailbox (and some room).
DESCRIPTORS_PER_CONNECTION = 4


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files towards ``wanted`` (up to the hard
    limit); the limit now. A limit below ``wanted`` is logged: connections beyond it fail
    alone (1011), the gateway goes on."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + 64 if hard == resource.RLIM_INFINITY else min(wanted + 64, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        log.warning(
            "open-file limit %d is below the %d that gateway.max_connections needs; raise "
            "the hard limit (ulimit -Hn, systemd LimitNOFILE) or lower max_connections",
            soft,
            wanted,
        )
    return soft


@dataclass
class GatewayCounters:
    """What the gateway has seen since it started (``GET /status``)."""

    connections_open: int = 0
    connections: int = 0
    requests: int = 0
    replies: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    too_large: int = 0
    in_flight_waits: int = 0
    throttled_s: float = 0.0
    blocks_closed: int = 0
    #: requests the broker did not take within the request timeout (its queue full)
    dropped: int = 0
    #: handshakes refused, by reason (path, origin, subprotocol, token, full)
    refused: dict[str, int] = field(default_factory=dict)
    #: connections closed by the gateway, by reason (idle, text, malformed, slow_reader,
    #: too_big, error)
    closed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        found = dict(vars(self))
        found["throttled_s"] = round(self.throttled_s, 3)
        found["refused"] = dict(self.refused)
        found["closed"] = dict(self.closed)
        return found


class Gateway:
    """The WebSocket gateway of an app (``gateway`` section; docs/gateway.md).

    Args:
        config: the app config.
        context: the ZeroMQ context (default: a new one).
    """

    def __init__(self, config: AppConfig, *, context: zmq.Context | None = None) -> None:
        g = config.gateway
        self.config = config
        self.counters = GatewayCounters()
        self.started = time.monotonic()
        self._context = context if context is not None else zmq.Context()
        self._spec = socket_map(config)["client.frontend"]
        self._token = g.access_token()
        limits = config.protocol.limits()
        self.limits = BridgeLimits(
            max_message_bytes=g.max_message_bytes,
            max_frames=2 + limits.max_tensors,
            max_sessions=limits.max_sessions,
            max_in_flight=g.max_in_flight,
            request_timeout=config.broker.client_request_timeout,
            idle_timeout=g.idle_timeout,
            send_timeout=g.send_timeout,
        )
        self.handshake = Handshake(
            path=g.path,
            origins=g.origins,
            token=self._token,
            static_dir=g.static_dir,
            max_connections=g.max_connections,
            counters=self.counters,
            status=self.status,
        )
        #: set once listening; ``port`` is then the bound port (``gateway.port`` 0: any)
        self.bound = threading.Event()
        self.port: int | None = None
        #: the Prometheus /metrics URL when one serves (``/status`` names it)
        self.prometheus: str | None = None

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set (with room for ``max_connections`` descriptors).

        asyncio's own event loop: uvloop (0.23) stopped reading a connection for good once
        its flow control had paused it beside a full write buffer (the slow-reader test).
        """
        raise_descriptor_limit(DESCRIPTORS_PER_CONNECTION * self.config.gateway.max_connections)
        asyncio.run(self.serve(stop))

    async def serve(self, stop: StopFlag) -> None:
        g = self.config.gateway
        # twice the largest legal message, in an envelope of the most frames: above it the
        # connection closes (1009) before the message is buffered
        frames = self.limits.max_frames
        max_size = packed_size([g.frame_limit] + [0] * (frames - 1)) + 8 * frames
        async with serve(
            self._connection,
            g.host,
            g.port,
            process_request=self.handshake.process_request,
            select_subprotocol=select_subprotocol,
            compression=None,  # RLX is binary; deflate costs CPU and invites zip bombs
            max_size=max_size,
            max_queue=4,
            ping_interval=g.ping_interval,
            ping_timeout=g.ping_interval,
            close_timeout=5,
            server_header=None,
            ssl=self._tls(),
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            scheme = "wss" if g.tls_cert is not None else "ws"
            log.info("gateway listening at %s://%s:%d%s", scheme, g.host, self.port, g.path)
            self.bound.set()
            while not stop.is_set():
                await asyncio.sleep(STOP_POLL)
            log.info("gateway stopping: closing %d connections", self.counters.connections_open)
            server.close(close_connections=True)
            await server.wait_closed()
        self._context.term()
        log.info("gateway stopped")

    def _tls(self) -> ssl.SSLContext | None:
        g = self.config.gateway
        if g.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(g.tls_cert, g.tls_key)
        return context

    async def _connection(self, ws: ServerConnection) -> None:
        counters = self.counters
        counters.connections += 1
        counters.connections_open += 1
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        g, b = self.config.gateway, self.config.broker
        budget = ConnectionBudget.of(
            rate=g.rate_limit,
            burst=g.rate_burst,
            byte_rate=g.byte_rate_limit,
            byte_burst=g.frame_limit,
            refusal_rate=b.peer_refusal_rate,
            refusal_burst=b.peer_refusal_burst,
            now=time.monotonic(),
        )
        dealer = None
        try:  # a fault on one connection (no descriptor left, a bug) closes it alone
            dealer = open_socket(self._context, self._spec)
            await Bridge(ws, dealer, self.limits, budget, counters).run()
        except Exception:
            counters.closed["error"] += 1
            log.exception("connection from %s failed; closed", ws.remote_address)
            await ws.close(1011, "internal error")
        finally:
            if dealer is not None:
                dealer.close(linger=1000)
            counters.connections_open -= 1
            if ws.close_code == 1009:
                counters.closed["too_big"] += 1

    def status(self) -> dict[str, Any]:
        """The counters and settings as a JSON object."""
        g = self.config.gateway
        return {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "port": self.port,
            "path": g.path,
            "broker": self._spec.endpoint,
            "token_required": self._token is not None,
            "counters": self.counters.as_dict(),
            "prometheus": self.prometheus,
        }
