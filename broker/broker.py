"""The broker: routes RLX blocks from clients to workers over three ROUTER sockets.

docs/exchange.md ("Broker", "Link") is the contract. Routing is envelope-only:
the broker reads a message's header (``peek``) and its size, never a payload.
It answers init, close and heartbeat itself, forwards update, reset and metrics
to the block's worker as link REQ and routes the worker's REP back. It watches
workers' liveness, re-homes the blocks of a dead or leaving worker, releases
idle blocks and moves blocks at episode boundaries (rebalance, drain).

Nothing a peer sends stops the loop: every message is handled inside a guard
that answers or drops it and logs; every send is non-blocking and a reply that
cannot be delivered is counted and dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil
import zmq

from relaax_zmq import link
from relaax_zmq.config import AppConfig
from relaax_zmq.daemon import StopFlag
from relaax_zmq.errors import ProtocolError
from relaax_zmq.link import Command
from relaax_zmq.protocol import (
    SUPPORTED_VERSIONS,
    ErrorCode,
    Flag,
    MessageType,
    Role,
    encode,
    messages,
)
from relaax_zmq.protocol.constants import HEADER, MAGIC, VERSION, type_name
from relaax_zmq.protocol.envelope import Envelope, message_bytes, peek
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.sockets import open_socket, socket_map

from . import admin
from .balance import Load, admission_refusal, least_loaded, should_move
from .sessions import Block, InFlight, SessionTable
from .stats import Counters, RateWindow
from .workers import Worker, WorkerRegistry

log = logging.getLogger(__name__)

#: Messages read from one socket before looking at the others (fairness).
RECV_BATCH = 256
#: Longest poll wait (ms), so that a stop request is seen quickly.
MAX_POLL_MS = 100
_BOUNDARY_FLAGS = int(Flag.TERMINAL | Flag.TRUNCATED)
_FORWARDED = (MessageType.UPDATE, MessageType.RESET, MessageType.METRICS)
_COMMANDS = {c.value: c for c in Command}
# plain ints: pyzmq's flag enums cost microseconds per frame on the hot path
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def available_memory() -> int:
    """Bytes of memory available to new work (``psutil.virtual_memory().available``)."""
    return int(psutil.virtual_memory().available)


def worker_label(identity: bytes) -> str:
    """A worker identity as text; ``label.encode('utf-8', 'surrogateescape')`` gives it back."""
    return identity.decode("utf-8", "surrogateescape")


class _Throttle:
    """At most one warning per ``period`` seconds; the others are counted and summarised."""

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, text: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.period:
            self._suppressed += 1
            return
        if self._suppressed:
            text += f" (and {self._suppressed} similar warnings)"
            self._suppressed = 0
        self._last = now
        log.warning(text, *args)


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
        self._limits = config.protocol.limits()
        self._max_bytes = b.max_message_bytes or config.protocol.max_message_bytes
        self._memory = memory
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
        self._frontend: zmq.Socket | None = None
        self._backend: zmq.Socket | None = None
        self._admin: zmq.Socket | None = None
        self._hb_frames = link.control(Command.HEARTBEAT)
        self._throttle = _Throttle()

    # ------------------------------------------------------------------ loop

    def run(self, stop: StopFlag) -> None:
        """Bind the three ROUTERs and serve until ``stop`` is set."""
        names = ("broker.frontend", "broker.backend", "broker.admin")
        sockets: list[zmq.Socket] = []
        try:
            for name in names:
                sockets.append(open_socket(self._context, self._specs[name]))
                self.endpoints[name] = sockets[-1].getsockopt_string(zmq.LAST_ENDPOINT)
            self._frontend, self._backend, self._admin = sockets
            for name in names:
                log.info("%s bound at %s", name, self.endpoints[name])
            self.bound.set()
            self._loop(stop)
        finally:
            for sock in sockets:
                sock.close(linger=0)
            self._frontend = self._backend = self._admin = None
            log.info("broker stopped")

    def _loop(self, stop: StopFlag) -> None:
        assert self._frontend is not None and self._backend is not None
        assert self._admin is not None
        poller = zmq.Poller()
        handlers: dict[zmq.Socket, Callable[[list[Any]], None]] = {
            self._frontend: self._on_client,
            self._backend: self._on_worker,
            self._admin: self._on_admin,
        }
        for sock in handlers:
            poller.register(sock, zmq.POLLIN)
        interval = self.workers.interval
        next_tick = time.monotonic() + interval
        while not stop.is_set():
            wait = max(0.0, next_tick - time.monotonic())
            ready = dict(poller.poll(min(MAX_POLL_MS, int(wait * 1000) + 1)))
            for sock, handler in handlers.items():
                if sock in ready:
                    self._drain(sock, handler)
            now = time.monotonic()
            if now >= next_tick:
                self._guard(self._tick, now)
                next_tick = now + interval

    def _drain(self, sock: zmq.Socket, handler: Callable[[list[Any]], None]) -> None:
        for _ in range(RECV_BATCH):
            try:
                frames = _recv(sock)
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                self._throttle.warn("receive failed: %s", exc)
                return
            self._guard(handler, frames)
            if not sock.getsockopt(_EVENTS) & _POLLIN:  # cheaper than a zmq.Again
                return

    def _guard(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:  # one bad message or broker bug must not stop the loop
            log.exception("broker: handling a message failed; dropped")

    def _tick(self, now: float) -> None:
        """Heartbeats to workers, dead workers' blocks re-homed, idle blocks released."""
        for worker in self.workers.dead(now):
            log.warning(
                "worker %s silent for %.1f s: dead, re-homing its blocks",
                worker.label,
                now - worker.last_seen,
            )
            self._forget_worker(worker, now)
        for worker in self.workers:
            self._send_backend(worker.identity, self._hb_frames)
        idle = self.config.broker.session_idle_timeout
        if idle is not None:
            for block in self.sessions:
                if not block.in_flight and now - block.last_seen > idle:
                    log.info("block %d idle for %.1f s: released", block.id, now - block.last_seen)
                    self.counters.idle_released += 1
                    self._release(block, "idle")

    # ------------------------------------------------------------- sending

    def _send(self, sock: zmq.Socket | None, frames: Sequence[Any]) -> bool:
        if sock is None:
            return False
        try:
            # ROUTER_MANDATORY and a full queue fail on the first frame, never midway
            last = len(frames) - 1
            for i, frame in enumerate(frames):
                sock.send(frame, _NOBLOCK_MORE if i < last else _NOBLOCK, copy=False)
            return True
        except zmq.Again:
            reason = "queue full"
        except zmq.ZMQError as exc:
            reason = str(exc)
        peer = bytes(frames[0]) if frames else b""
        self._throttle.warn("send to %r dropped: %s", peer[:32], reason)
        return False

    def _reply(self, identity: bytes, frames: Sequence[Any]) -> None:
        """Send an RLX message to a client; count it, or count it dropped."""
        if self._send(self._frontend, [identity, *frames]):
            self.counters.replies += 1
        else:
            self.counters.dropped_replies += 1

    def _send_backend(self, identity: bytes, frames: Sequence[Any]) -> bool:
        if self._send(self._backend, [identity, *frames]):
            return True
        self.counters.dropped_link += 1
        return False

    def _control(self, identity: bytes, command: Command, **body: Any) -> None:
        self._send_backend(identity, link.control(command, **body))

    def _simple(
        self, identity: bytes, mtype: MessageType, env: Envelope, session_count: int | None = None
    ) -> None:
        """A tensor-less reply (done, heartbeat) echoing the request's ids."""
        n = env.session_count if session_count is None else session_count
        head = HEADER.pack(MAGIC, VERSION, int(mtype), 0, env.sequence, env.session_id, n, 0, 0)
        self._reply(identity, [head])

    def _error(
        self,
        identity: bytes,
        code: ErrorCode,
        text: str,
        *,
        sequence: int = 0,
        session_id: int = 0,
        session_count: int = 0,
        restart: bool = False,
        versions: Sequence[int] | None = None,
    ) -> None:
        self.counters.error(code)
        message = messages.error(
            code,
            text,
            sequence=sequence,
            session_id=session_id,
            session_count=session_count,
            versions=versions,
            restart=restart,
        )
        self._reply(identity, encode(message, self._limits))

    # ------------------------------------------------------------- clients

    def _on_client(self, frames: list[Any]) -> None:
        now = time.monotonic()
        identity = frames[0].bytes
        msg = frames[1:]
        self.counters.requests += 1
        self.rates.add(now, messages=1)
        size = message_bytes(msg)
        if size > self._max_bytes:
            text = f"at most {self._max_bytes} bytes"
            self._refuse(identity, msg, ProtocolError("message", text, f"{size} bytes"))
            return
        try:
            env = peek(msg, self._limits)
        except ProtocolError as exc:
            self._refuse(identity, msg, exc)
            return
        mtype = env.type
        if mtype in _FORWARDED:
            self._forward(identity, env, msg, now)
        elif mtype == MessageType.INIT:
            self._on_init(identity, env, now)
        elif mtype == MessageType.HEARTBEAT:
            self._on_heartbeat(identity, env, now)
        elif mtype == MessageType.CLOSE:
            self._on_close(identity, env)
        else:
            text = (
                "header.type: expected a request (init, update, reset, metrics, close or "
                f"heartbeat), got {type_name(mtype)}"
            )
            self._error(
                identity,
                ErrorCode.UNKNOWN_TYPE,
                text,
                sequence=env.sequence,
                session_id=env.session_id,
                session_count=env.session_count,
            )

    def _refuse(self, identity: bytes, msg: list[Any], exc: ProtocolError) -> None:
        reply = refusal(exc, msg, self._limits)
        self.counters.error(int(reply.tensors[Role.ERROR_CODE]))
        self._reply(identity, encode(reply, self._limits))

    def _owned(self, identity: bytes, env: Envelope) -> Block | None:
        """The live block the request names, when this connection owns it; else answer."""
        block = self.sessions.get(env.session_id)
        if block is not None and block.count == env.session_count and block.client == identity:
            return block
        text = (
            f"session {env.session_id} (count {env.session_count}): "
            "no such block on this connection; init again"
        )
        self._error(
            identity,
            ErrorCode.UNKNOWN_SESSION,
            text,
            sequence=env.sequence,
            session_id=env.session_id,
            session_count=env.session_count,
        )
        return None

    def _forward(self, identity: bytes, env: Envelope, msg: list[Any], now: float) -> None:
        block = self._owned(identity, env)
        if block is None:
            return
        if env.sequence in block.in_flight:
            text = f"header.sequence: expected a sequence not in flight, got {env.sequence}"
            self._error(
                identity,
                ErrorCode.MALFORMED,
                text,
                sequence=env.sequence,
                session_id=env.session_id,
                session_count=env.session_count,
            )
            return
        boundary = env.type == MessageType.RESET or (
            env.type == MessageType.UPDATE and bool(env.flags & _BOUNDARY_FLAGS)
        )
        block.in_flight[env.sequence] = InFlight(identity, msg, boundary, now)
        block.last_seen = now
        self.counters.forwarded += 1
        if env.type == MessageType.UPDATE:
            self.rates.add(now, steps=env.session_count)
        self._send_backend(block.worker, link.forward(Command.REQUEST, identity, msg))

    def _on_init(self, identity: bytes, env: Envelope, now: float) -> None:
        n = env.session_count
        if env.session_id:
            block = self.sessions.get(env.session_id)
            if block is not None and block.count == n:
                self._resume(identity, env, block, now)
                return
        loads, names = self._loads(now)
        refusal = admission_refusal(
            self._memory(), self.config.broker.min_free_memory_mib, loads, n
        )
        target = None if refusal else least_loaded(loads, n)
        if target is None:
            self.counters.refused_inits += 1
            self._error(
                identity,
                ErrorCode.BUSY,
                refusal or "capacity: no worker has room",
                sequence=env.sequence,
            )
            return
        exploit = bool(env.flags & Flag.EXPLOIT)
        block = self.sessions.add(n, exploit, names[target], identity, now)
        self._assign(block, restart=False)
        log.debug("block %d (%d sessions) on %s", block.id, n, target)
        self._ready(identity, env, block)

    def _resume(self, identity: bytes, env: Envelope, block: Block, now: float) -> None:
        """Bind a live block to a new connection; its worker ends the block's episodes."""
        dropped = len(block.in_flight)
        block.in_flight.clear()  # replies to the old connection are stale now
        block.client = identity
        block.last_seen = now
        self.counters.resumed_blocks += 1
        self._control(block.worker, Command.RESTART, session_id=block.id)
        log.info("block %d resumed (%d requests in flight dropped)", block.id, dropped)
        self._ready(identity, env, block)

    def _ready(self, identity: bytes, env: Envelope, block: Block) -> None:
        message = messages.ready(
            block.id,
            block.count,
            exploit=block.exploit,
            sequence=env.sequence,
            versions=SUPPORTED_VERSIONS,
        )
        self._reply(identity, encode(message, self._limits))

    def _on_heartbeat(self, identity: bytes, env: Envelope, now: float) -> None:
        if env.session_id:
            block = self._owned(identity, env)
            if block is None:
                return
            block.last_seen = now
        self._simple(identity, MessageType.HEARTBEAT, env)

    def _on_close(self, identity: bytes, env: Envelope) -> None:
        if env.session_id:
            block = self._owned(identity, env)
            if block is None:
                return
            self._release(block, "closed", answer=False)
        self._simple(identity, MessageType.DONE, env)

    # ------------------------------------------------------------- workers

    def _on_worker(self, frames: list[Any]) -> None:
        now = time.monotonic()
        identity = frames[0].bytes
        try:
            if len(frames) < 2:
                raise ProtocolError("link", "a command frame", "an empty message")
            command = _COMMANDS.get(frames[1].bytes) or link.parse_command(frames[1])
            worker = self.workers.seen(identity, now)
            if command == Command.REPLY:
                if worker is not None:
                    self._on_reply(worker, frames[2:], now)
                    return
            elif command in (Command.REGISTER, Command.HEARTBEAT, Command.BYE):
                if len(frames) != 3:
                    raise ProtocolError(
                        f"link.{command.name.lower()}", "2 frames", f"{len(frames) - 1} frames"
                    )
                body = link.parse_control(command, frames[2])
                if command == Command.REGISTER:
                    self._register(identity, body, now)
                    return
                if worker is not None:
                    if command == Command.HEARTBEAT:
                        worker.stats = body
                    else:
                        log.info("worker %s says BYE: re-homing its blocks", worker.label)
                        self._forget_worker(worker, now)
                    return
            else:
                raise ProtocolError("link.command", "REG, HB, BYE or REP", command.name)
            # a worker we do not know (it will register again when it hears nothing from us)
            self.counters.bad_link += 1
            self._throttle.warn(
                "link %s from unregistered worker %r dropped", command.name, identity[:32]
            )
        except ProtocolError as exc:
            self.counters.bad_link += 1
            self._throttle.warn("bad link message from %r dropped: %s", identity[:32], exc)

    def _register(self, identity: bytes, body: dict[str, Any], now: float) -> None:
        if body["link_version"] != link.LINK_VERSION:
            raise ProtocolError(
                "link.register.link_version", link.LINK_VERSION, body["link_version"]
            )
        old = self.workers.get(identity)
        orphans = self.sessions.on_worker(identity) if old is not None else []
        worker = self.workers.register(identity, body, now)
        log.info(
            "worker %s registered (pid %d, capacity %d)%s",
            worker.label,
            worker.pid,
            worker.capacity,
            f", again: re-homing its {len(orphans)} blocks" if old is not None else "",
        )
        if old is not None:
            worker.draining = old.draining
            self._rehome(orphans, now)

    def _forget_worker(self, worker: Worker, now: float) -> None:
        self.workers.remove(worker.identity)
        self._rehome(self.sessions.on_worker(worker.identity), now)

    def _rehome(self, blocks: list[Block], now: float) -> None:
        """Give each block a new worker (ASSIGN restart, in-flight resent) or lose it."""
        for block in blocks:
            self.sessions.detach(block)
        for block in blocks:
            loads, names = self._loads(now)
            target = least_loaded(loads, block.count)
            if target is None:
                self._lose(block)
                continue
            self.sessions.attach(block, names[target], now)
            self.counters.rehomed_blocks += 1
            self._assign(block, restart=True)
            for entry in block.in_flight.values():
                entry.sent = now
                self._send_backend(
                    block.worker, link.forward(Command.REQUEST, entry.identity, entry.frames)
                )
            log.info(
                "block %d re-homed to %s (%d requests resent)",
                block.id,
                target,
                len(block.in_flight),
            )

    def _lose(self, block: Block) -> None:
        """No worker can take ``block``: its in-flight requests get BUSY + RESTART."""
        self.sessions.remove(block.id)
        self.counters.lost_blocks += 1
        text = f"session {block.id}: its worker is gone and no worker has room; init again"
        log.warning("block %d lost: no worker can take it", block.id)
        for seq, entry in block.in_flight.items():
            self._error(
                entry.identity,
                ErrorCode.BUSY,
                text,
                sequence=seq,
                session_id=block.id,
                session_count=block.count,
                restart=True,
            )

    def _assign(self, block: Block, *, restart: bool) -> None:
        self._control(
            block.worker,
            Command.ASSIGN,
            session_id=block.id,
            count=block.count,
            exploit=block.exploit,
            restart=restart,
        )

    def _release(self, block: Block, reason: str, *, answer: bool = True) -> None:
        """Forget ``block`` and tell its worker; in-flight requests get UNKNOWN_SESSION."""
        self.sessions.remove(block.id)
        if block.worker in self.workers:
            self._control(block.worker, Command.RELEASE, session_id=block.id)
        if not answer:
            return
        for seq, entry in block.in_flight.items():
            self._error(
                entry.identity,
                ErrorCode.UNKNOWN_SESSION,
                f"session {block.id}: released ({reason}); init again",
                sequence=seq,
                session_id=block.id,
                session_count=block.count,
            )

    def _on_reply(self, worker: Worker, frames: list[Any], now: float) -> None:
        if len(frames) < 2:
            raise ProtocolError("link.reply", "a client identity and RLX frames", "nothing")
        client = frames[0].bytes
        reply = frames[1:]
        env = peek(reply, self._limits)  # ProtocolError: garbage from the worker, dropped
        block, entry = self._match(worker, client, env)
        if block is None or entry is None:
            self.counters.stale_replies += 1
            log.debug("stale reply from %s (sequence %d) dropped", worker.label, env.sequence)
            return
        self._reply(client, reply)
        if entry.boundary and not block.in_flight:
            self._maybe_move(block, now)

    def _match(
        self, worker: Worker, client: bytes, env: Envelope
    ) -> tuple[Block | None, InFlight | None]:
        """The block and in-flight entry a worker's reply answers (removed from in flight)."""
        named = self.sessions.get(env.session_id)
        if named is not None and _takes(named, worker, client, env.sequence):
            return named, named.in_flight.pop(env.sequence)
        for block in self.sessions.on_worker(worker.identity):  # a reply that names no block
            if _takes(block, worker, client, env.sequence):
                return block, block.in_flight.pop(env.sequence)
        return None, None

    def _maybe_move(self, block: Block, now: float) -> None:
        """At an episode boundary: move a block off a draining or busier worker."""
        current = self.workers.get(block.worker)
        if current is None:
            return
        timeout = self.config.broker.rebalance_timeout
        old_enough = timeout is not None and now - block.placed >= timeout
        if not (current.draining or old_enough):
            return
        loads, names = self._loads(now)
        here = next(load for load in loads if names[load.name] == current.identity)
        target = should_move(here, block.count, loads)
        if target is None:
            return
        old = block.worker
        self._control(old, Command.RELEASE, session_id=block.id)
        self.sessions.attach(block, names[target], now)
        self._assign(block, restart=False)
        self.counters.moved_blocks += 1
        log.info("block %d moved from %s to %s", block.id, worker_label(old), target)

    def _loads(self, now: float) -> tuple[list[Load], dict[str, bytes]]:
        """Every worker's load (for ``least_loaded``) and the identity of each name."""
        loads, names = [], {}
        for worker in self.workers:
            _, sessions, in_flight = self.sessions.worker_load(worker.identity)
            label = worker_label(worker.identity)
            names[label] = worker.identity
            alive = self.workers.alive(worker, now)
            loads.append(Load(label, sessions, worker.capacity, in_flight, alive, worker.draining))
        return loads, names

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
        self._send(self._admin, [identity, *delimiter, reply])

    def status(self) -> dict[str, Any]:
        """The admin status object (docs/exchange.md, "Admin endpoint")."""
        now = time.monotonic()
        workers = []
        for worker in self.workers:
            blocks, sessions, in_flight = self.sessions.worker_load(worker.identity)
            workers.append(
                {
                    "name": worker.label,
                    "announced_name": worker.name,
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
        found = self.workers.by_label(worker)
        if found is None:
            known = ", ".join(w.label for w in self.workers) or "none"
            return f"unknown worker {worker!r} (workers: {known})"
        found.draining = True
        log.info("worker %s draining", found.label)
        return None

    def drop(self, session: int) -> str | None:
        block = self.sessions.containing(session)
        if block is None:
            return f"no block contains session {session}"
        log.info("block %d dropped (admin)", block.id)
        self._release(block, "dropped by admin")
        return None


def _recv(sock: zmq.Socket) -> list[Any]:
    """One whole multipart message, without blocking, as zero-copy frames."""
    frames = [sock.recv(_NOBLOCK, copy=False)]
    while frames[-1].more:
        frames.append(sock.recv(_NOBLOCK, copy=False))
    return frames


def _takes(block: Block, worker: Worker, client: bytes, sequence: int) -> bool:
    """Whether ``block`` has request ``sequence`` of ``client`` in flight on ``worker``."""
    entry = block.in_flight.get(sequence)
    return entry is not None and block.worker == worker.identity and entry.identity == client
