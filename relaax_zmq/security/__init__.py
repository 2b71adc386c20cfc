"""CURVE encryption and ZAP authentication of the exchange's sockets (docs/security.md).

``keys``: key files, the allow-list by role and revocation; ``zap``: the ZAP handler thread;
``curve``: a socket's CURVE settings (``CurveSpec``) and ``apply_curve``; ``gate``: a server
socket's check, per message, that its peer's key is still allowed (``PeerGate``).
"""

from relaax_zmq.security.curve import CurveSpec, apply_curve
from relaax_zmq.security.gate import PeerGate, peer_gate
from relaax_zmq.security.keys import (
    PEER_ROLES,
    ROLES,
    SERVER_ROLES,
    KeyInfo,
    KeyRing,
    generate,
    list_keys,
    load_key_pair,
    load_public_key,
    revoke,
)
from relaax_zmq.security.zap import ZapHandler, authenticator

__all__ = [
    "PEER_ROLES",
    "ROLES",
    "SERVER_ROLES",
    "CurveSpec",
    "KeyInfo",
    "KeyRing",
    "PeerGate",
    "ZapHandler",
    "apply_curve",
    "authenticator",
    "generate",
    "list_keys",
    "load_key_pair",
    "load_public_key",
    "peer_gate",
    "revoke",
]
