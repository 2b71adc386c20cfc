"""Free loopback ports for apps run on this machine (``relaax_zmq.learn``, ``relaax-zmq
train``), tests and benchmarks, and apps placed on them.

Ports are picked below the kernel's ephemeral range (``ip_local_port_range``): a port
from that range, free when picked, can become the local port of any outgoing connection
(a client connecting, a daemon restarting) before its daemon binds it, and the bind then
fails with "Address already in use". Below the range only an explicit bind takes a port.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path
from typing import Any

#: Lowest port handed out (above the well-known and most registered services' ports).
PORT_FLOOR = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")

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


def ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (32768 where unknown)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing is bound to right now, below the ephemeral
    range, never one this process handed out before."""
    return free_port_range(1)


def free_port_range(count: int) -> int:
    """A port p such that p .. p + count - 1 are all free on 127.0.0.1 (now) and below the
    ephemeral range: shard i of an app binds ``gradients_port + i`` and ``weights_port + i``.
    None of them was handed out by this process before."""
    top = ephemeral_floor() - count
    if top <= PORT_FLOOR:
        raise RuntimeError(f"no room for {count} ports between {PORT_FLOOR} and {top + count}")
    pick = random.SystemRandom()
    for _ in range(1000):
        first = pick.randrange(PORT_FLOOR, top)
        if _bindable(range(first, first + count)) and _claim(range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def _bindable(ports: range) -> bool:
    """Whether every port in ``ports`` can be bound on 127.0.0.1 now."""
    held: list[socket.socket] = []
    try:
        for port in ports:
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in held:
            s.close()


def loopback_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` on a free port."""
    return f"tcp://127.0.0.1:{free_port()}"


def on_free_ports(app: dict[str, Any]) -> dict[str, Any]:
    """``app`` (an app mapping, changed in place and returned) with the broker's, the
    parameter servers' (a free range for ``parameter_servers.shards``) and the metrics
    collector's endpoints on free loopback ports, and those of the learners and replay
    servers (a free range each for their counts)."""
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
    learner = app.setdefault("learner", {})
    learner["endpoint"] = f"tcp://127.0.0.1:{free_port_range(int(learner.get('count') or 1))}"
    replay = app.setdefault("replay", {})
    servers = int(replay.get("shards") or 1)
    for name in ("insert", "sample"):
        replay[name] = f"tcp://127.0.0.1:{free_port_range(servers)}"
    return app
