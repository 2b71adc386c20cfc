"""Free loopback ports for tests and benchmarks, and apps placed on them."""

from __future__ import annotations

import socket
import threading
from typing import Any

#: Every port this process has handed out. The kernel may give a just-closed port again at
#: once, so two endpoints picked one after the other could otherwise be the same port.
_handed_out: set[int] = set()
_lock = threading.Lock()


def _claim(ports: range) -> bool:
    """Record ``ports`` as handed out, unless one of them already was."""
    with _lock:
        if any(p in _handed_out for p in ports):
            return False
        _handed_out.update(ports)
        return True


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on right now, never one this process
    handed out before."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if _claim(range(port, port + 1)):
            return port
    raise RuntimeError("no free port on 127.0.0.1 that was not handed out already")


def free_port_range(count: int) -> int:
    """A port p such that p .. p + count - 1 are all free on 127.0.0.1 (now): shard i of an
    app binds ``gradients_port + i`` and ``weights_port + i``. None of them was handed out
    by this process before."""
    for _ in range(200):
        held: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", held[0].getsockname()[1] + i if i else 0))
            first = held[0].getsockname()[1]
            if _claim(range(first, first + count)):
                return first
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
    gradients, weights = free_port_range(shards), free_port_range(shards)  # never overlapping
    ps["endpoints"] = {
        **(ps.get("endpoints") or {}),
        "gradients_port": gradients,
        "weights_port": weights,
    }
    app["metrics"] = {**(app.get("metrics") or {}), "endpoint": loopback_endpoint()}
    return app
