"""The ZAP handler: the thread that tells each CURVE server socket whom to let in.

ZeroMQ asks the handler bound at ``inproc://zeromq.zap.01`` of the socket's context about
every CURVE handshake (RFC 27). ``authenticator(context)`` starts one per context (the
first CURVE server socket does, before it binds: without a handler ZeroMQ would let every
key in). Each server socket registers its ZAP domain (its socket-map name) with the key ring
and the roles it admits; a key is allowed when the ring knows it under one of those roles
and it is not revoked. An allowed connection gets its z85 public key as its ZeroMQ
``User-Id``, so that ``PeerGate`` (``security.gate``) can ask ``judge`` again about each
message it brings. The thread ends by itself when its context terminates.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import zmq

from relaax_zmq.errors import AuthError
from relaax_zmq.security.keys import KeyRing

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
#: Seconds between looks at the key files while no handshake comes.
IDLE_CHECK = 1.0
#: Refusals are logged the first few times, then once per this many.
_LOG_FIRST, _LOG_EVERY = 10, 1000

_lock = threading.Lock()
_handlers: dict[int, ZapHandler] = {}


@dataclass
class ZapCounters:
    """CURVE handshakes by verdict: the closed set ``_judge`` gives (``KeyRing.lookup``'s
    refusals included)."""

    allowed: int = 0
    unknown: int = 0  # a key the ring does not know
    revoked: int = 0  # a key the ring revoked
    wrong_role: int = 0  # a known key of a role the socket does not admit
    unknown_domain: int = 0  # a ZAP domain no socket registered
    not_curve: int = 0  # another mechanism, or malformed credentials

    def count(self, verdict: str) -> int:
        """One more handshake judged ``verdict``; how many so far."""
        count = getattr(self, verdict) + 1
        setattr(self, verdict, count)
        return count


class ZapHandler(threading.Thread):
    """Answers ZAP requests of one context (see the module docstring)."""

    def __init__(self, context: zmq.Context) -> None:
        super().__init__(name="relaax-zap", daemon=True)
        self._context = weakref.ref(context)
        self._domains: dict[bytes, tuple[KeyRing, frozenset[str]]] = {}
        self._rings: dict[str, KeyRing] = {}
        self._lock = threading.Lock()
        self._bound = threading.Event()
        self._error: zmq.ZMQError | None = None
        #: handshakes by verdict
        self.counters = ZapCounters()

    def start_bound(self) -> ZapHandler:
        """Start the thread and return once its socket is bound (``AuthError`` if it cannot be)."""
        self.start()
        self._bound.wait()
        if self._error is not None:
            raise AuthError(f"cannot start the ZAP handler at {ZAP_ENDPOINT}: {self._error}")
        return self

    def admit(self, domain: str, ring: KeyRing, roles: Iterable[str]) -> None:
        """Let keys of ``roles`` in ``ring`` through the sockets of ZAP domain ``domain``."""
        with self._lock:
            self._domains[domain.encode()] = (ring, frozenset(roles))

    def ring(self, keys_dir: str, reload_interval: float) -> KeyRing:
        """The key ring of ``keys_dir`` shared by this context's sockets."""
        with self._lock:
            ring = self._rings.get(keys_dir)
            if ring is None:
                ring = self._rings[keys_dir] = KeyRing(keys_dir, reload_interval)  # type: ignore[arg-type]
            return ring

    def run(self) -> None:
        context = self._context()
        if context is None:
            self._bound.set()
            return
        sock = context.socket(zmq.REP)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = exc
            sock.close(0)
            self._bound.set()
            return
        del context  # the thread must not keep its context alive
        self._bound.set()
        try:
            while True:
                if sock.poll(int(IDLE_CHECK * 1000)):
                    sock.send_multipart(self.answer(sock.recv_multipart()))
                else:
                    for ring in list(self._rings.values()):
                        ring.refresh()
        except zmq.ZMQError:
            pass  # the context terminates (ETERM) or closed the socket: we are done
        finally:
            sock.close(0)

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The ZAP reply to ``request`` (version, id, domain, address, identity, mechanism, creds)."""
        if len(request) < 6 or request[0] != b"1.0":
            return [
                b"1.0",
                request[1] if len(request) > 1 else b"",
                b"400",
                b"bad request",
                b"",
                b"",
            ]
        request_id, domain, address, mechanism = request[1], request[2], request[3], request[5]
        verdict, key, who = self._judge(domain, mechanism, request[6:])
        count = self.counters.count(verdict)
        if verdict == "allowed":
            # the connection's User-Id is its z85 public key: ``judge`` looks at it again later
            return [b"1.0", request_id, b"200", b"OK", key, b""]
        self._log_refusal(verdict, count, domain, address, who)
        return [b"1.0", request_id, b"400", verdict.encode(), b"", b""]

    def _judge(
        self, domain: bytes, mechanism: bytes, credentials: list[bytes]
    ) -> tuple[str, bytes, str]:
        """A handshake's verdict, the z85 public key it offered (b"" if none) and who."""
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            with self._lock:
                known = domain in self._domains
            return ("not_curve" if known else "unknown_domain"), b"", ""
        key = zmq.utils.z85.encode(credentials[0])
        verdict, who = self.judge(domain, key)
        return verdict, key, who

    def judge(self, domain: bytes, key: bytes) -> tuple[str, str]:
        """Whether z85 public ``key`` may talk to the sockets of ZAP ``domain`` now: the
        verdict (``allowed``, ``revoked``, ``unknown``, ``wrong_role``, ``unknown_domain``)
        and who it is (``role/name`` when the ring knows the key, else the key)."""
        with self._lock:
            entry = self._domains.get(domain)
        if entry is None:
            return "unknown_domain", key.decode()
        ring, roles = entry
        found = ring.lookup(key)
        if isinstance(found, str):
            return found, key.decode()
        role, name = found
        if role not in roles:
            return "wrong_role", f"{role}/{name}"
        return "allowed", f"{role}/{name}"

    def domain_ring(self, domain: bytes) -> KeyRing | None:
        """The key ring that judges ZAP ``domain`` (None for a domain not admitted)."""
        with self._lock:
            entry = self._domains.get(domain)
        return None if entry is None else entry[0]

    def _log_refusal(
        self, verdict: str, count: int, domain: bytes, address: bytes, who: str
    ) -> None:
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            log.warning(
                "refused a CURVE handshake on %s from %s: %s key %s (%d so far)",
                domain.decode(errors="replace"),
                address.decode(errors="replace"),
                verdict,
                who,
                count,
            )


def authenticator(context: zmq.Context) -> ZapHandler:
    """The running ZAP handler of ``context``, started (and bound) on first use."""
    with _lock:
        handler = _handlers.get(id(context))
        if handler is not None and handler._context() is context and handler.is_alive():
            return handler
        for key in [k for k, h in _handlers.items() if not h.is_alive()]:
            del _handlers[key]
        handler = ZapHandler(context).start_bound()
        _handlers[id(context)] = handler
        return handler
