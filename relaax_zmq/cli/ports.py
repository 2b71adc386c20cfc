"""Which TCP endpoints the daemons of some roles bind, and whether they are free here."""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

from relaax_zmq.config import AppConfig, ZmqEndpoint


def bound_endpoints(config: AppConfig, roles: Sequence[str], shards: int) -> dict[str, str]:
    """Key path -> endpoint of what ``roles`` bind (tcp endpoints only)."""
    found: dict[str, str] = {}
    if "broker" in roles:
        for name in ("frontend", "backend", "admin"):
            found[f"broker.{name}"] = getattr(config.broker, name)
    if "metrics" in roles:
        found["metrics.endpoint"] = config.metrics.endpoint
    if "ps" in roles:
        ps = config.parameter_servers
        for shard in range(shards):
            found[f"parameter_servers[{shard}].gradients"] = ps.gradients_endpoint(shard)
            found[f"parameter_servers[{shard}].weights"] = ps.weights_endpoint(shard)
    gateway = config.gateway
    if "gateway" in roles and gateway.enabled and gateway.port:
        host = f"[{gateway.host}]" if ":" in gateway.host else gateway.host
        found["gateway.port"] = f"tcp://{host}:{gateway.port}"
    return {k: v for k, v in found.items() if v.startswith("tcp://")}


def taken(endpoint: str) -> bool:
    """True when a tcp endpoint's port is in use on its (local) address.

    An address that is not this machine's (a remote host) counts as free: the daemon
    that binds it reports its own error.
    """
    parsed = ZmqEndpoint(endpoint)
    host = "0.0.0.0" if parsed.host == "*" else parsed.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as ZeroMQ binds: a port left in TIME_WAIT by a stopped daemon is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, parsed.port or 0))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def taken_endpoints(config: AppConfig, roles: Sequence[str], shards: int) -> list[str]:
    """``key (endpoint)`` of every endpoint of ``roles`` whose port is in use."""
    return [
        f"{key} ({endpoint})"
        for key, endpoint in bound_endpoints(config, roles, shards).items()
        if taken(endpoint)
    ]
