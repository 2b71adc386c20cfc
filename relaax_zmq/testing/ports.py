"""Free loopback ports for tests and benchmarks."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` on a free port."""
    return f"tcp://127.0.0.1:{free_port()}"
