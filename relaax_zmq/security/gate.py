"""Keys revoked after their handshake: a server socket's check of every message it reads.

CURVE authenticates a connection once, at its handshake; the ZAP handler gives the
connection its public key as ZeroMQ's ``User-Id`` (every frame read from it carries it).
A ``PeerGate`` asks the ZAP handler again whether that key may still talk to its socket
(the same verdict a new handshake would get: revoked, removed from the allow-list, or of
another role) whenever the key files were read again, and otherwise remembers the answer
per key: one metadata lookup and one dict lookup a message. A server drops (or answers
``AUTH``) what a refused key sends, without waiting for the peer to reconnect.
"""

from __future__ import annotations

from typing import Any

import zmq

from relaax_zmq.security.curve import CurveSpec
from relaax_zmq.security.zap import ZapHandler, authenticator

USER_ID = "User-Id"


class PeerGate:
    """Whether the connection a message came on may still talk to this socket."""

    def __init__(self, handler: ZapHandler, domain: str) -> None:
        self.handler = handler
        self.domain = domain.encode()
        ring = handler.domain_ring(self.domain)
        if ring is None:
            raise ValueError(f"ZAP domain {domain!r} is not admitted: open its socket first")
        self._ring = ring
        self._reloads = ring.reloads
        self._verdicts: dict[str, str | None] = {}

    def refusal(self, frame: Any) -> str | None:
        """None when ``frame`` (a ``zmq.Frame`` read from this socket) may pass; else why
        not, e.g. ``revoked key <z85>`` or ``wrong_role key client/alice``."""
        if self._ring.reloads != self._reloads:  # the key files were read again
            self._reloads = self._ring.reloads
            self._verdicts.clear()
        try:
            key = frame.get(USER_ID)
        except (zmq.ZMQError, AttributeError):  # no metadata: not from a CURVE connection
            key = ""
        try:
            return self._verdicts[key]
        except KeyError:
            why = self._verdicts[key] = self._judge(key)
            return why

    def _judge(self, key: str) -> str | None:
        if not key:
            return "a connection without a CURVE key"
        verdict, who = self.handler.judge(self.domain, key.encode())
        return None if verdict == "allowed" else f"{verdict} key {who}"


def peer_gate(context: zmq.Context, name: str, curve: CurveSpec | None) -> PeerGate | None:
    """The gate of server socket ``name`` (its ZAP domain), or None without CURVE or for a
    socket that connects (its server is the one that judges)."""
    if curve is None or not curve.is_server:
        return None
    return PeerGate(authenticator(context), name)
