"""The worker side of the broker: link messages from the backend and worker liveness.

Workers register (REG), heartbeat (HB), leave (BYE) and answer forwarded requests
(REP, routed back to the client). A worker that leaves, dies (silent for
``heartbeat_liveness`` intervals) or registers again has its blocks re-homed:
each goes to the least-loaded worker with an ASSIGN restart and its requests in
flight are sent again, or, when no worker has room, is lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import ErrorCode, link
from relaax_zmq.protocol.envelope import Envelope, peek
from relaax_zmq.protocol.link import Command
from relaax_zmq.runtime.identity import HOST_ENV

from .balance import least_loaded
from .outbox import Outbox
from .placement import Placement
from .sessions import Block, InFlight, SessionTable
from .stats import Counters
from .workers import Worker, WorkerRegistry

# the daemon's log name, the same for every module of the broker
log = logging.getLogger(__name__)

_COMMANDS = {c.value: c for c in Command}


class WorkerLink:
    """Handles each worker message (``on_message``) and the periodic liveness ``tick``."""

    def __init__(
        self,
        workers: WorkerRegistry,
        sessions: SessionTable,
        counters: Counters,
        out: Outbox,
        placement: Placement,
    ) -> None:
        self.workers = workers
        self.sessions = sessions
        self.counters = counters
        self.placement = placement
        self._limits = out.limits
        self._throttle = out.throttle
        self._hb_frames = link.control(Command.HEARTBEAT)
        # bound once: the per-message path makes no more calls than a method of its own would
        self._reply = out.reply
        self._send_backend = out.send_backend
        self._error = out.error

    def tick(self, now: float) -> None:
        """Dead workers' blocks re-homed, then a heartbeat to every worker."""
        self.reap(now)
        for worker in self.workers:
            self._send_backend(worker.identity, self._hb_frames)

    def reap(self, now: float) -> None:
        """Forget the workers silent for longer than the liveness timeout, re-homing their
        blocks. The broker calls it every ``REAP_INTERVAL`` (0.1 s), not only once per
        heartbeat interval: a death is acted on within 0.1 s of the timeout."""
        for worker in self.workers.dead(now):
            log.warning(
                "worker %s silent for %.1f s: dead, re-homing its blocks",
                worker.name,
                now - worker.last_seen,
            )
            self._forget(worker, now)

    def on_refused(self, frames: list[Any], why: str) -> None:
        """A message from a worker whose key is no longer allowed (revoked since its
        handshake): dropped, and the worker, when registered, is forgotten at once (its
        blocks re-homed) rather than after the liveness timeout."""
        worker = self.workers.get(frames[0].bytes)
        if worker is None:
            return
        log.warning("worker %s refused (%s): re-homing its blocks", worker.name, why)
        self._forget(worker, time.monotonic())

    def on_message(self, frames: list[Any]) -> None:
        """One message from the backend: ``[worker identity, command, *body]``."""
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
                        log.info("worker %s says BYE: re-homing its blocks", worker.name)
                        self._forget(worker, now)
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

    def _on_reply(self, worker: Worker, frames: list[Any], now: float) -> None:
        if len(frames) < 2:
            raise ProtocolError("link.reply", "a client identity and RLX frames", "nothing")
        client = frames[0].bytes
        reply = frames[1:]
        env = peek(reply, self._limits)  # ProtocolError: garbage from the worker, dropped
        block, entry = self._match(worker, client, env)
        if block is None or entry is None:
            self.counters.stale_replies += 1
            log.debug("stale reply from %s (sequence %d) dropped", worker.name, env.sequence)
            return
        self._reply(client, reply)
        if entry.boundary and not block.in_flight:
            self.placement.maybe_move(block, now)

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

    def _register(self, identity: bytes, body: dict[str, Any], now: float) -> None:
        if body["link_version"] != link.LINK_VERSION:
            raise ProtocolError(
                "link.register.link_version", link.LINK_VERSION, body["link_version"]
            )
        holder = self.workers.holder(body["worker"], identity)
        if holder is not None:
            if self.workers.alive(holder, now):
                self._refuse(identity, body, holder, now)
                return
            log.warning(
                "worker %s (pid %d) takes over the name of a silent worker (pid %d): "
                "re-homing its blocks",
                holder.name,
                body["pid"],
                holder.pid,
            )
            self._forget(holder, now)
        old = self.workers.get(identity)
        orphans = self.sessions.on_worker(identity) if old is not None else []
        worker = self.workers.register(identity, body, now)
        log.info(
            "worker %s registered (pid %d, capacity %d)%s",
            worker.name,
            worker.pid,
            worker.capacity,
            f", again: re-homing its {len(orphans)} blocks" if old is not None else "",
        )
        if old is not None:
            worker.draining = old.draining
            self._rehome(orphans, now)

    def _refuse(self, identity: bytes, body: dict[str, Any], holder: Worker, now: float) -> None:
        """A second live worker named like ``holder``: REFUSE it; ``holder`` keeps its blocks."""
        self.counters.refused_workers += 1
        reason = (
            f"the worker name {holder.name!r} is held by a live worker (pid {holder.pid}, "
            f"instance {holder.instance}, heard {now - holder.last_seen:.1f} s ago); give each "
            f"worker its own name (--name), each host its own host name or ${HOST_ENV}"
        )
        log.warning(
            "worker %s (pid %d, instance %s) refused: %s",
            body["worker"],
            body["pid"],
            body["instance"],
            reason,
        )
        self._send_backend(identity, link.control(Command.REFUSE, reason=reason))

    def _forget(self, worker: Worker, now: float) -> None:
        self.workers.remove(worker.identity)
        self._rehome(self.sessions.on_worker(worker.identity), now)

    def _rehome(self, blocks: list[Block], now: float) -> None:
        """Give each block a new worker (ASSIGN restart, in-flight resent) or lose it."""
        for block in blocks:
            self.sessions.detach(block)
        for block in blocks:
            loads, names = self.placement.loads(now)
            target = least_loaded(loads, block.count)
            if target is None:
                self._lose(block)
                continue
            self.sessions.attach(block, names[target], now)
            self.counters.rehomed_blocks += 1
            self.placement.assign(block, restart=True)
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


def _takes(block: Block, worker: Worker, client: bytes, sequence: int) -> bool:
    """Whether ``block`` has request ``sequence`` of ``client`` in flight on ``worker``."""
    entry = block.in_flight.get(sequence)
    return entry is not None and block.worker == worker.identity and entry.identity == client
