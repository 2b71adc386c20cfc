"""The broker: routes RLX blocks from clients to workers over three ROUTER sockets.

docs/exchange.md ("Broker", "Link") is the contract. Routing is envelope-only:
the broker reads a message's header (``peek``) and its size, never a payload.
It answers init, close and heartbeat itself, forwards update, reset and metrics
to the block's worker as link REQ and routes the worker's REP back. It watches
workers' liveness, re-homes the blocks of a dead or leaving worker, releases
idle blocks and moves blocks at episode boundaries (rebalance, drain).

This module owns the sockets and the event loop; the work is done by

- ``clients.ClientSide``: the frontend (init, heartbeat, close; forwarding);
- ``worker_link.WorkerLink``: the backend (REG, HB, BYE, REP; liveness, re-homing);
- ``placement.Placement``: loads, ASSIGN/RELEASE, moves and idle release;
- ``outbox.Outbox``: every send, counted and dropped when it cannot go;
- ``fairness.PeerBudget`` and ``cutoff.Cutoff``: a client connection whose messages are
  refused faster than its budget allows gets one ``BUSY`` and is closed.

Nothing a peer sends stops the loop: every message is handled inside a guard
that answers or drops it and logs; every send is non-blocking and a reply that
cannot be delivered is counted and dropped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.protocol import ErrorCode, header
from relaax_zmq.protocol.envelope import message_bytes
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.security import PeerGate, peer_gate

from . import admin
from .clients import ClientSide
from .cutoff import Cutoff
from .fairness import PeerBudget, budget_text, refusal_cost
from .memory import Trimmer
from .outbox import Outbox
from .placement import Placement
from .sessions import SessionTable
from .stats import Counters, RateWindow
from .worker_link import WorkerLink
from .workers import WorkerRegistry

__all__ = ["MAX_POLL_MS", "RECV_BATCH", "Broker", "available_memory"]

log = logging.getLogger(__name__)

#: Messages read from one socket before looking at the others (fairness).
RECV_BATCH = 256
#: Refused client messages handled before the other sockets are looked at: a flood the
#: broker refuses (each costs a decode and an error reply) cannot hold a worker's reply back.
REFUSED_BATCH = 4
#: Longest poll wait (ms), so that a stop request is seen quickly.
MAX_POLL_MS = 100
#: Seconds between checks for dead workers (between heartbeats too): a dead worker is
#: dropped at most this long after ``heartbeat_interval * heartbeat_liveness`` of silence.
REAP_INTERVAL = MAX_POLL_MS / 1000
# plain ints: pyzmq's flag enums cost microseconds per frame on the hot path
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_SRCFD = int(zmq.SRCFD)


def available_memory() -> int:
    """Bytes of memory available to new work (``psutil.virtual_memory().available``)."""
    return int(psutil.virtual_memory().available)


class Broker:
    """The broker daemon's state and event loop.

    Args:
        config: the app config (``broker`` and ``protocol`` sections are used).
        inproc: bind ``inproc://`` endpoints instead (components as threads of one process).
        context: the ZeroMQ context (default: the process-wide instance; inproc peers
            must share it).
        memory: bytes of available memory, for admission (default: psutil's figure).

    Sockets are made in ``run``, in the thread that runs the loop.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        inproc: bool = False,
        context: zmq.Context | None = None,
        memory: Callable[[], int] = available_memory,
    ) -> None:
        b = config.broker
        self.config = config
        self._specs = socket_map(config, inproc=inproc)
        self._context = context if context is not None else zmq.Context.instance()
        self.workers = WorkerRegistry(
            b.heartbeat_interval, b.heartbeat_liveness, b.max_sessions_per_worker
        )
        self.sessions = SessionTable()
        self.counters = Counters()
        self.rates = RateWindow()
        self.started = time.monotonic()
        #: set once the sockets are bound (``endpoints`` then holds their addresses)
        self.bound = threading.Event()
        self.endpoints: dict[str, str] = {}
        self._admin: zmq.Socket | None = None
        self.out = Outbox(self.counters, config.protocol.limits())
        self.placement = Placement(config, self.workers, self.sessions, self.counters, self.out)
        self.clients = ClientSide(
            config, self.sessions, self.counters, self.rates, self.out, self.placement, memory
        )
        self.link = WorkerLink(self.workers, self.sessions, self.counters, self.out, self.placement)
        self.trimmer = Trimmer()
        self.budget = PeerBudget(b.peer_refusal_rate, b.peer_refusal_burst)
        self.cutoff = Cutoff()
        self._held = self.cutoff.held
        self._budget_text = budget_text(b.peer_refusal_rate, b.peer_refusal_burst)
        self._on_client = self.clients.on_message
        #: refresh ``published`` with the status once per tick (a Prometheus endpoint reads it)
        self.publish = False
        #: the status as of the last tick, when ``publish``; None before
        self.published: dict[str, Any] | None = None

    # ------------------------------------------------------------------ loop

    def run(self, stop: StopFlag) -> None:
        """Bind the three ROUTERs and serve until ``stop`` is set."""
        names = ("broker.frontend", "broker.backend", "broker.admin")
        sockets: list[zmq.Socket] = []
        try:
            for name in names:
                sockets.append(open_socket(self._context, self._specs[name]))
                self.endpoints[name] = sockets[-1].getsockopt_string(zmq.LAST_ENDPOINT)
            self.out.frontend, self.out.backend, self._admin = sockets
            for name in names:
                log.info("%s bound at %s", name, self.endpoints[name])
            self.bound.set()
            if self.publish:
                self.published = self.status()
            self._loop(stop, *sockets)
        finally:
            for sock in sockets:
                sock.close(linger=0)
            self.out.frontend = self.out.backend = self._admin = None
            log.info("broker stopped")

    def _loop(
        self, stop: StopFlag, frontend: zmq.Socket, backend: zmq.Socket, admin_sock: zmq.Socket
    ) -> None:
        poller = zmq.Poller()
        handlers: dict[zmq.Socket, Callable[[list[Any]], None]] = {
            frontend: self._on_frontend,
            backend: self.link.on_message,
            admin_sock: self._on_admin,
        }
        # with CURVE: each socket's check that a message's key is still allowed, and what
        # a refused message gets (an AUTH error, the worker dropped, an admin error)
        gates: dict[zmq.Socket, tuple[PeerGate, Callable[[list[Any], str], None]]] = {}
        for sock, name, refused in (
            (frontend, "broker.frontend", self.clients.on_refused),
            (backend, "broker.backend", self.link.on_refused),
            (admin_sock, "broker.admin", self._on_admin_refused),
        ):
            gate = peer_gate(self._context, name, self._specs[name].curve)
            if gate is not None:
                gates[sock] = (gate, refused)
        for sock in handlers:
            poller.register(sock, zmq.POLLIN)
        interval = self.workers.interval
        next_tick = time.monotonic() + interval
        next_reap = time.monotonic() + REAP_INTERVAL
        while not stop.is_set():
            wait = max(0.0, next_tick - time.monotonic())
            ready = dict(poller.poll(min(MAX_POLL_MS, int(wait * 1000) + 1)))
            for sock, handler in handlers.items():
                if sock in ready:
                    self._drain(sock, handler, gates.get(sock))
            now = time.monotonic()
            if self._held:
                self._guard(self.cutoff.tick, now)
            if now >= next_tick:
                self._guard(self._tick, now)
                next_tick, next_reap = now + interval, now + REAP_INTERVAL
            elif now >= next_reap:
                self._guard(self.link.reap, now)
                next_reap = now + REAP_INTERVAL

    def _drain(
        self,
        sock: zmq.Socket,
        handler: Callable[[list[Any]], None],
        gate: tuple[PeerGate, Callable[[list[Any], str], None]] | None = None,
    ) -> None:
        counters = self.counters
        refused_until = counters.error_replies + counters.cut_dropped + REFUSED_BATCH
        for _ in range(RECV_BATCH):
            try:
                frames = _recv(sock)
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                self.out.throttle.warn("receive failed: %s", exc)
                return
            why = None if gate is None else gate[0].refusal(frames[-1])
            if why is None:
                self._guard(handler, frames)
            else:
                self.counters.refused_messages += 1
                self.out.throttle.warn("%s: a message refused: %s", gate[0].domain.decode(), why)
                self._guard(gate[1], frames, why)
            if counters.error_replies + counters.cut_dropped >= refused_until:
                return  # the others' turn: more is read on the next round
            if not sock.getsockopt(_EVENTS) & _POLLIN:  # cheaper than a zmq.Again
                return

    def _guard(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:  # one bad message or broker bug must not stop the loop
            log.exception("broker: handling a message failed; dropped")

    def _tick(self, now: float) -> None:
        """Heartbeats to workers, dead workers' blocks re-homed, idle blocks released, the
        memory of released blocks handed back (``memory.Trimmer``)."""
        self.link.tick(now)
        self.placement.release_idle(now)
        self.trimmer.tick(now, self.sessions.removed)
        self.budget.sweep(now)
        if self.publish:
            self.published = self.status()

    # ------------------------------------------------------------ frontend

    def _on_frontend(self, frames: list[Any]) -> None:
        """A client message: handled, and charged to its connection when it was refused."""
        counters = self.counters
        if self._held and frames[0].bytes in self._held:
            counters.cut_dropped += 1  # a connection being closed: not read
            return
        before = counters.error_replies
        self._on_client(frames)
        if counters.error_replies != before:
            now = time.monotonic()
            cost = refusal_cost(message_bytes(frames))
            if not self.budget.charge(frames[0].bytes, now, cost):
                self._cut(frames, now)

    def _cut(self, frames: list[Any], now: float) -> None:
        """``frames``' connection spent its budget: one BUSY saying so, then it is closed."""
        identity = frames[0].bytes
        sequence, session_id, count = header.salvage(frames[1:], self.out.limits.max_sessions)
        self.out.error(
            identity,
            ErrorCode.BUSY,
            self._budget_text,
            sequence=sequence,
            session_id=session_id,
            session_count=count,
        )
        self.counters.cut_peers += 1
        self.budget.forget(identity)
        self.cutoff.cut(identity, _source_fd(frames[-1]), now)
        self.out.throttle.warn("client %r closed: %s", identity[:32], self._budget_text)

    # --------------------------------------------------------------- admin

    def _on_admin(self, frames: list[Any]) -> None:
        identity = frames[0].bytes
        body = frames[1:]
        delimiter: list[bytes] = []
        if len(body) == 2 and len(body[0]) == 0:  # a REQ socket's empty delimiter
            delimiter, body = [b""], body[1:]
        if len(body) == 1:
            reply = admin.handle(body[0].bytes, self)
        else:
            reply = b'{"ok":false,"error":"expected one frame holding a JSON object"}'
        self.out.send(self._admin, [identity, *delimiter, reply])

    def _on_admin_refused(self, frames: list[Any], why: str) -> None:
        """An admin request whose key is no longer allowed: an error, nothing done."""
        body = json.dumps({"ok": False, "error": f"refused: {why}"}).encode()
        delimiter = [b""] if len(frames) == 3 and len(frames[1]) == 0 else []
        self.out.send(self._admin, [frames[0].bytes, *delimiter, body])

    def status(self) -> dict[str, Any]:
        """The admin status object (docs/exchange.md, "Admin endpoint")."""
        now = time.monotonic()
        workers = []
        for worker in self.workers:
            blocks, sessions, in_flight = self.sessions.worker_load(worker.identity)
            workers.append(
                {
                    "name": worker.name,
                    "instance": worker.instance,
                    "pid": worker.pid,
                    "alive": self.workers.alive(worker, now),
                    "draining": worker.draining,
                    "capacity": worker.capacity,
                    "sessions": sessions,
                    "blocks": blocks,
                    "in_flight": in_flight,
                    "last_seen_s": round(now - worker.last_seen, 3),
                    "stats": worker.stats,
                }
            )
        counters = self.counters.as_dict()
        return {
            "uptime_s": round(now - self.started, 3),
            "pid": os.getpid(),
            "endpoints": dict(self.endpoints),
            "workers": workers,
            "sessions": {"blocks": len(self.sessions), "sessions": self.sessions.sessions()},
            "rates": self.rates.rates(now, self.started),
            "queues": {
                "in_flight": self.sessions.in_flight(),
                "dropped_replies": self.counters.dropped_replies,
            },
            "counters": counters,
        }

    def drain(self, worker: str) -> str | None:
        """Start draining ``worker``: its blocks move off at their episode boundaries."""
        found = self.workers.by_label(worker)
        if found is None:
            known = ", ".join(w.name for w in self.workers) or "none"
            return f"unknown worker {worker!r} (workers: {known})"
        found.draining = True
        log.info("worker %s draining", found.name)
        return None

    def drop(self, session: int) -> str | None:
        """Release the block that holds ``session`` (its requests in flight are answered)."""
        block = self.sessions.containing(session)
        if block is None:
            return f"no block contains session {session}"
        log.info("block %d dropped (admin)", block.id)
        self.placement.release(block, "dropped by admin")
        return None


def _source_fd(frame: Any) -> int:
    """The descriptor of the connection ``frame`` came from; -1 when there is none."""
    try:
        return int(frame.get(_SRCFD))
    except (zmq.ZMQError, AttributeError, TypeError, ValueError):
        return -1


def _recv(sock: zmq.Socket) -> list[Any]:
    """One whole multipart message, without blocking, as zero-copy frames."""
    frames = [sock.recv(_NOBLOCK, copy=False)]
    while frames[-1].more:
        frames.append(sock.recv(_NOBLOCK, copy=False))
    return frames
