"""Talk to a broker's admin endpoint: one JSON request, one JSON reply (docs/exchange.md)."""

from __future__ import annotations

import json
import time
from typing import Any

import zmq

from relaax_zmq.errors import RelaaxError


class AdminError(RelaaxError):
    """The admin endpoint did not answer, or answered ``ok: false``."""


def admin_request(
    endpoint: str, request: dict[str, Any], *, timeout: float = 5.0
) -> dict[str, Any]:
    """Send ``request`` to the broker's admin endpoint; its reply (``ok`` may be false)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(json.dumps(request).encode())
        if not sock.poll(int(timeout * 1000)):
            raise AdminError(f"no reply from the admin endpoint {endpoint} in {timeout} s")
        return json.loads(sock.recv())
    finally:
        sock.close()


def broker_status(endpoint: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The broker's status object."""
    reply = admin_request(endpoint, {"command": "status"}, timeout=timeout)
    if not reply.get("ok"):
        raise AdminError(f"status refused: {reply.get('error')}")
    return reply["status"]


def live_workers(endpoint: str) -> list[dict[str, Any]]:
    """The status entries of the workers the broker considers alive."""
    return [w for w in broker_status(endpoint)["workers"] if w["alive"]]


def wait_for_workers(endpoint: str, count: int, timeout: float = 30.0) -> None:
    """Return once ``count`` workers are alive; ``AdminError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(live_workers(endpoint)) >= count:
                return
        except AdminError:
            pass  # the broker is still starting
        time.sleep(0.1)
    raise AdminError(f"{count} workers did not register at {endpoint} in {timeout} s")
