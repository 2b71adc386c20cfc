"""Shared helpers of the security tests: key folders, CURVE configs, handshake probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq
import zmq.utils.monitor

from relaax_zmq.config import parse_config
from relaax_zmq.runtime.ports import on_free_ports
from relaax_zmq.security import ROLES, generate


def make_keys(folder: Path) -> Path:
    """A keys folder holding the default key pair of every role."""
    keys = folder / "keys"
    for role in ROLES:
        generate(keys, role)
    return keys


def curve_config(keys: Path, **security: Any):
    """An app config on free loopback ports with CURVE on, keys in ``keys``."""
    app = {
        "version": 1,
        "environment": {"run": "bandit"},
        "algorithm": {"name": "reinforce"},
        "security": {"curve": True, "keys_dir": str(keys), "reload_interval": 0.1, **security},
    }
    return parse_config(on_free_ports(app))


def handshake_events(
    sock: zmq.Socket, endpoint: str | None = None, timeout: float = 3.0
) -> set[int]:
    """The monitor events of ``sock`` until a handshake succeeds or fails (or ``timeout``).

    Give ``endpoint`` to connect once the monitor listens (nothing is missed); a socket that
    is already connected shows the outcome of its next attempt (failures are retried).
    """
    ends = {
        zmq.EVENT_HANDSHAKE_SUCCEEDED,
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    }
    monitor = sock.get_monitor_socket()
    if endpoint is not None:
        sock.connect(endpoint)
    seen: set[int] = set()
    try:
        while monitor.poll(int(timeout * 1000)):
            event = zmq.utils.monitor.recv_monitor_message(monitor)["event"]
            seen.add(event)
            if event in ends:
                break
    finally:
        sock.disable_monitor()
        monitor.close(0)
    return seen


def curve_dealer(
    context: zmq.Context, endpoint: str, pair: tuple[bytes, bytes] | None, server: bytes
) -> zmq.Socket:
    """A DEALER to ``endpoint``: CURVE with key ``pair`` trusting ``server``; NULL if no pair."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if pair is not None:
        sock.setsockopt(zmq.CURVE_PUBLICKEY, pair[0])
        sock.setsockopt(zmq.CURVE_SECRETKEY, pair[1])
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
    return sock
