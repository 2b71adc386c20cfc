"""A real broker, worker and gateway for the gateway tests, and a WebSocket RLX client."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from exchange_support import Daemon, Exchange, running_exchange, start_daemon, wait_until
from websockets.sync.client import ClientConnection, connect

from relaax_zmq.gateway import pack, unpack
from relaax_zmq.protocol import Message, decode, encode, messages
from relaax_zmq.runtime.ports import free_port

TOKEN = "test-token-0123456789"
MAX_FRAMES = 66


@dataclass
class GatewayApp:
    """The exchange and its gateway (``url`` is the WebSocket endpoint)."""

    exchange: Exchange
    gateway: Daemon
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/rlx"

    def status(self) -> dict[str, Any]:
        scheme = "https" if self.tls else "http"
        context = ssl._create_unverified_context() if self.tls else None  # a test's own cert
        url = f"{scheme}://127.0.0.1:{self.port}/status"
        with urllib.request.urlopen(url, timeout=5, context=context) as reply:
            return json.loads(reply.read())

    def counters(self) -> dict[str, Any]:
        return self.status()["counters"]


@contextmanager
def running_gateway(
    folder: Path, workers: int = 1, sessions: int = 256, **gateway: Any
) -> Iterator[GatewayApp]:
    """Broker, ``workers`` workers (``sessions`` each) and a gateway daemon on free loopback
    ports; all stopped after."""
    port = free_port()
    settings = {"enabled": True, "port": port, **gateway}
    hosts = {"max_sessions": sessions}
    with running_exchange(folder, worker_count=workers, gateway=settings, workers=hosts) as ex:
        daemon = start_daemon("gateway", "relaax_zmq.gateway", ex.config)
        app = GatewayApp(ex, daemon, port, tls="tls_cert" in gateway)
        try:
            wait_until(lambda: _answers(app), 30, "the gateway to listen")
            yield app
        except BaseException:
            print(f"--- gateway\n{daemon.output()[-4000:]}")
            raise
        finally:
            app.gateway.stop()  # the test may have replaced it (a restart)


def _answers(app: GatewayApp) -> bool:
    if app.gateway.proc.poll() is not None:
        raise AssertionError(f"the gateway exited:\n{app.gateway.output()}")
    try:
        app.status()
    except OSError:
        return False
    return True


def open_ws(url: str, token: str | None = TOKEN, **options: Any) -> ClientConnection:
    """A WebSocket offering rlx.v1 (and the token)."""
    protocols = ["rlx.v1"] + ([f"rlx-token.{token}"] if token else [])
    return connect(url, subprotocols=protocols, compression=None, **options)


def decode_reply(data: bytes) -> Message:
    """An RLX message out of its WebSocket envelope."""
    return decode(unpack(data, MAX_FRAMES))


def request(ws: ClientConnection, message: Message, timeout: float = 10.0) -> Message:
    """Send one RLX message and decode the next reply."""
    ws.send(pack(encode(message)))
    return decode_reply(ws.recv(timeout))


def step(ws: ClientConnection, session: int, sequence: int) -> Message:
    """One CartPole-shaped update."""
    state = np.zeros((1, 4), np.float32)
    return request(ws, messages.update(session, state=state, sequence=sequence))
