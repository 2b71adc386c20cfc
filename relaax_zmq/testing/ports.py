"""Free loopback ports for tests and benchmarks, and apps placed on them."""

from __future__ import annotations

import socket
from typing import Any


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` on a free port."""
    return f"tcp://127.0.0.1:{free_port()}"


def on_free_ports(app: dict[str, Any]) -> dict[str, Any]:
    """``app`` (an app mapping, changed in place and returned) with the broker's, the
    parameter servers' and the metrics collector's endpoints on free loopback ports."""
    app["broker"] = {
        **(app.get("broker") or {}),
        **{name: loopback_endpoint() for name in ("frontend", "backend", "admin")},
    }
    ps = app.setdefault("parameter_servers", {})
    ps["endpoints"] = {
        **(ps.get("endpoints") or {}),
        "gradients_port": free_port(),
        "weights_port": free_port(),
    }
    app["metrics"] = {**(app.get("metrics") or {}), "endpoint": loopback_endpoint()}
    return app
