"""CURVE settings of one socket (``CurveSpec``) and applying them to a socket.

A server socket (it binds) uses its role's key pair, turns ``CURVE_SERVER`` on, names its
ZAP domain (the socket-map name) and admits the peer roles it serves through the context's
ZAP handler. A client socket uses its role's key pair and checks the server's public key.
Key files are read when the socket opens: a missing, unsafe or revoked key raises
``AuthError`` naming the file (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq

from relaax_zmq.security.keys import load_key_pair, load_public_key
from relaax_zmq.security.zap import authenticator


@dataclass(frozen=True)
class CurveSpec:
    """How one socket authenticates: its own key pair and either the server it trusts
    (``server_role``/``server_name``) or, for a server, the ``admit`` roles it lets in."""

    keys_dir: Path
    role: str
    name: str
    server_role: str | None = None
    server_name: str | None = None
    admit: tuple[str, ...] = ()
    reload_interval: float = 1.0

    @property
    def is_server(self) -> bool:
        return self.server_role is None


def apply_curve(context: zmq.Context, sock: zmq.Socket, spec: CurveSpec, domain: str) -> None:
    """Configure ``sock`` (not yet bound or connected) for CURVE as ``spec`` says."""
    public, secret = load_key_pair(spec.keys_dir, spec.role, spec.name)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    if spec.is_server:
        handler = authenticator(context)
        ring = handler.ring(str(spec.keys_dir), spec.reload_interval)
        handler.admit(domain, ring, spec.admit)
        sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
        sock.setsockopt(zmq.CURVE_SERVER, 1)
    else:
        assert spec.server_role is not None and spec.server_name is not None
        server = load_public_key(spec.keys_dir, spec.server_role, spec.server_name)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
