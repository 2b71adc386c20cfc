"""Talk to a broker's admin endpoint: one JSON request, one JSON reply (docs/exchange.md).

With ``security.curve`` pass ``curve=admin_curve(config)`` (the ``admin`` key pair).
"""

from __future__ import annotations

import json
import time
from typing import Any

import zmq

from relaax_zmq.errors import RelaaxError
from relaax_zmq.runtime.sockets import ADMIN_MAX_MESSAGE_BYTES, SocketSpec, open_socket, socket_map
from relaax_zmq.security import CurveSpec


class AdminError(RelaaxError):
    """The admin endpoint did not answer, or answered ``ok: false``."""


def admin_curve(config: Any) -> CurveSpec | None:
    """The CURVE settings of the ``admin.client`` socket of ``config`` (an ``AppConfig``)."""
    return socket_map(config)["admin.client"].curve


def admin_request(
    endpoint: str,
    request: dict[str, Any],
    *,
    timeout: float = 5.0,
    curve: CurveSpec | None = None,
) -> dict[str, Any]:
    """Send ``request`` to the broker's admin endpoint; its reply (``ok`` may be false)."""
    spec = SocketSpec(
        "admin.client", zmq.DEALER, endpoint, False, ADMIN_MAX_MESSAGE_BYTES, curve=curve
    )
    sock = open_socket(zmq.Context.instance(), spec)
    try:
        sock.send(json.dumps(request).encode())
        if not sock.poll(int(timeout * 1000)):
            raise AdminError(f"no reply from the admin endpoint {endpoint} in {timeout} s")
        return json.loads(sock.recv())
    finally:
        sock.close()


def broker_status(
    endpoint: str, *, timeout: float = 5.0, curve: CurveSpec | None = None
) -> dict[str, Any]:
    """The broker's status object."""
    reply = admin_request(endpoint, {"command": "status"}, timeout=timeout, curve=curve)
    if not reply.get("ok"):
        raise AdminError(f"status refused: {reply.get('error')}")
    return reply["status"]


def app_broker_status(config: Any, *, timeout: float = 5.0) -> dict[str, Any]:
    """The status object of the broker of ``config`` (an ``AppConfig``), over CURVE if set."""
    return broker_status(str(config.broker.admin), timeout=timeout, curve=admin_curve(config))


def live_workers(endpoint: str, *, curve: CurveSpec | None = None) -> list[dict[str, Any]]:
    """The status entries of the workers the broker considers alive."""
    return [w for w in broker_status(endpoint, curve=curve)["workers"] if w["alive"]]


def wait_for_workers(
    endpoint: str, count: int, timeout: float = 30.0, *, curve: CurveSpec | None = None
) -> None:
    """Return once ``count`` workers are alive; ``AdminError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(live_workers(endpoint, curve=curve)) >= count:
                return
        except AdminError:
            pass  # the broker is still starting
        time.sleep(0.1)
    raise AdminError(f"{count} workers did not register at {endpoint} in {timeout} s")
