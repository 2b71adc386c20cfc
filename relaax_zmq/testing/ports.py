"""Free loopback ports for tests and benchmarks, and apps placed on them."""

from __future__ import annotations

import socket
from typing import Any


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int) -> int:
    """A port p such that p .. p + count - 1 are all free on 127.0.0.1 (now): shard i of an
    app binds ``gradients_port + i`` and ``weights_port + i``."""
    for _ in range(200):
        held: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", held[0].getsockname()[1] + i if i else 0))
            return held[0].getsockname()[1]
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def loopback_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` on a free port."""
    return f"tcp://127.0.0.1:{free_port()}"


def on_free_ports(app: dict[str, Any]) -> dict[str, Any]:
    """``app`` (an app mapping, changed in place and returned) with the broker's, the
    parameter servers' (a free range for ``parameter_servers.shards``) and the metrics
    collector's endpoints on free loopback ports."""
    app["broker"] = {
        **(app.get("broker") or {}),
        **{name: loopback_endpoint() for name in ("frontend", "backend", "admin")},
    }
    ps = app.setdefault("parameter_servers", {})
    shards = int(ps.get("shards") or 1)
    gradients = weights = free_port_range(shards)
    while abs(weights - gradients) < shards:  # the two ranges must not overlap
        weights = free_port_range(shards)
    ps["endpoints"] = {
        **(ps.get("endpoints") or {}),
        "gradients_port": gradients,
        "weights_port": weights,
    }
    app["metrics"] = {**(app.get("metrics") or {}), "endpoint": loopback_endpoint()}
    return app
