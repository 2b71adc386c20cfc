"""Where blocks live: every worker's load, ASSIGN and RELEASE, moves at episode
boundaries (rebalance, drain) and the release of idle blocks.

The choices themselves are ``balance``'s pure functions; this module applies
them to the worker registry and the block table and tells the workers.
"""

from __future__ import annotations

import logging

from relaax_zmq.config import AppConfig
from relaax_zmq.protocol import ErrorCode
from relaax_zmq.protocol.link import Command

from .balance import Load, should_move
from .outbox import Outbox
from .sessions import Block, SessionTable
from .stats import Counters
from .workers import WorkerRegistry

# the daemon's log name, the same for every module of the broker
log = logging.getLogger(__name__)


class Placement:
    """Puts blocks on workers, moves them between workers and takes them off."""

    def __init__(
        self,
        config: AppConfig,
        workers: WorkerRegistry,
        sessions: SessionTable,
        counters: Counters,
        out: Outbox,
    ) -> None:
        self.config = config
        self.workers = workers
        self.sessions = sessions
        self.counters = counters
        self.out = out

    def loads(self, now: float) -> tuple[list[Load], dict[str, bytes]]:
        """Every worker's load (for ``least_loaded``) and the identity of each name."""
        loads, names = [], {}
        for worker in self.workers:
            _, sessions, in_flight = self.sessions.worker_load(worker.identity)
            names[worker.name] = worker.identity  # unique among registered workers (``holder``)
            alive = self.workers.alive(worker, now)
            load = Load(worker.name, sessions, worker.capacity, in_flight, alive, worker.draining)
            loads.append(load)
        return loads, names

    def assign(self, block: Block, *, restart: bool) -> None:
        """Tell the block's worker to host it (``restart``: its episodes were cut short)."""
        self.out.control(
            block.worker,
            Command.ASSIGN,
            session_id=block.id,
            count=block.count,
            exploit=block.exploit,
            restart=restart,
        )

    def release(self, block: Block, reason: str, *, answer: bool = True) -> None:
        """Forget ``block`` and tell its worker; in-flight requests get UNKNOWN_SESSION."""
        self.sessions.remove(block.id)
        if block.worker in self.workers:
            self.out.control(block.worker, Command.RELEASE, session_id=block.id)
        if not answer:
            return
        for seq, entry in block.in_flight.items():
            self.out.error(
                entry.identity,
                ErrorCode.UNKNOWN_SESSION,
                f"session {block.id}: released ({reason}); init again",
                sequence=seq,
                session_id=block.id,
                session_count=block.count,
            )

    def maybe_move(self, block: Block, now: float) -> None:
        """At an episode boundary: move a block off a draining or busier worker."""
        current = self.workers.get(block.worker)
        if current is None:
            return
        timeout = self.config.broker.rebalance_timeout
        old_enough = timeout is not None and now - block.placed >= timeout
        if not (current.draining or old_enough):
            return
        loads, names = self.loads(now)
        here = next(load for load in loads if names[load.name] == current.identity)
        target = should_move(here, block.count, loads)
        if target is None:
            return
        old = block.worker
        self.out.control(old, Command.RELEASE, session_id=block.id)
        self.sessions.attach(block, names[target], now)
        self.assign(block, restart=False)
        self.counters.moved_blocks += 1
        log.info("block %d moved from %s to %s", block.id, current.name, target)

    def release_idle(self, now: float) -> None:
        """Release the blocks no one used for the idle timeout, unless a request of theirs
        was sent within it (a request in flight for longer is lost: its client gave up)."""
        idle = self.config.broker.session_idle_timeout
        if idle is None:
            return
        for block in self.sessions:
            if now - block.last_seen <= idle:
                continue
            if not any(now - entry.sent <= idle for entry in block.in_flight.values()):
                log.info("block %d idle for %.1f s: released", block.id, now - block.last_seen)
                self.counters.idle_released += 1
                self.release(block, "idle")
