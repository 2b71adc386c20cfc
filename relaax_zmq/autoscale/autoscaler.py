"""The autoscaler daemon: looks at the broker's status every ``autoscale.interval`` seconds,
asks the ``ScalingPolicy`` and applies its decision to the ``WorkerPool`` of its host.

Adding a worker starts a process; removing one first drains it at the broker (its blocks
move to other workers at their episode ends: no session is lost or restarted mid-episode),
then stops it once the broker shows it holding no block, or after ``drain_timeout``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relaax_zmq.autoscale.policy import Decision, Observation, ScalingPolicy
from relaax_zmq.autoscale.workers import WorkerPool, WorkerProcess
from relaax_zmq.config import AppConfig
from relaax_zmq.runtime.admin_client import AdminError, admin_curve, admin_request, broker_status
from relaax_zmq.runtime.daemon import StopFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Look:
    """One look at the cluster: what was seen and what was decided."""

    time: float
    workers: int
    draining: int
    sessions: int
    capacity: int
    refused_inits: int
    change: int
    reason: str


class Autoscaler:
    """Workers on this host between ``minimum`` and ``maximum`` (default: the ``autoscale``
    section's ``min`` and ``max``), for the app at ``config_path``."""

    def __init__(
        self,
        config: AppConfig,
        config_path: Path,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> None:
        a = config.autoscale
        self.config = config
        self.minimum = a.min if minimum is None else minimum
        self.maximum = a.max if maximum is None else maximum
        self.policy = ScalingPolicy(a, self.minimum, self.maximum)
        self.pool = WorkerPool(Path(config_path))
        self.history: list[Look] = []
        self.decisions = {"added": 0, "removed": 0}
        self._admin = str(config.broker.admin)
        self._curve = admin_curve(config)
        cap = config.broker.max_sessions_per_worker
        self.worker_capacity = min(config.workers.max_sessions, cap or config.workers.max_sessions)
        self._unreachable = 0

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: StopFlag) -> None:
        """Look and act every ``interval`` until ``stop``; then stop every worker."""
        interval = self.config.autoscale.interval
        log.info(
            "autoscaler: %d..%d workers, a look every %.1f s", self.minimum, self.maximum, interval
        )
        try:
            while not stop.is_set():
                self.step(time.monotonic())
                until = time.monotonic() + interval
                while not stop.is_set() and time.monotonic() < until:
                    time.sleep(min(0.1, interval))
        finally:
            self.pool.close()
            log.info("autoscaler stopped: %s", self.figures())

    def step(self, now: float) -> Look | None:
        """One look: reap exited workers, finish drains, decide, act."""
        self.pool.reap()
        try:
            status = broker_status(self._admin, timeout=2.0, curve=self._curve)
        except AdminError as exc:
            self._unreachable += 1
            if self._unreachable in (1, 10) or self._unreachable % 100 == 0:
                log.warning(
                    "broker unreachable (%s); keeping %d workers", exc, len(self.pool.workers)
                )
            if len(self.pool.active()) < self.minimum:  # start the minimum even without a broker
                for _ in range(self.minimum - len(self.pool.active())):
                    self.pool.start()
            return None
        self._unreachable = 0
        self._finish_drains(status, now)
        seen = self.observe(status, now)
        decision = self.policy.decide(seen)
        self._apply(decision, status, now)
        look = Look(
            now,
            len(self.pool.active()),
            len(self.pool.draining()),
            seen.sessions,
            seen.capacity,
            seen.refused_inits,
            decision.change,
            decision.reason,
        )
        self.history.append(look)
        del self.history[:-10_000]
        return look

    def observe(self, status: dict[str, Any], now: float) -> Observation:
        """The policy's view of ``status``."""
        live = [w for w in status["workers"] if w["alive"] and not w["draining"]]
        return Observation(
            time=now,
            refused_inits=int(status["counters"].get("refused_inits", 0)),
            sessions=int(status["sessions"]["sessions"]),
            capacity=sum(int(w["capacity"]) for w in live),
            workers=len(self.pool.active()),
            worker_capacity=self.worker_capacity,
        )

    # -- acting -------------------------------------------------------------------------------

    def _apply(self, decision: Decision, status: dict[str, Any], now: float) -> None:
        if decision.change > 0:
            log.info("adding %d worker(s): %s", decision.change, decision.reason)
            for _ in range(decision.change):
                self.pool.start()
            self.decisions["added"] += decision.change
        elif decision.change < 0:
            worker = self._least_busy(status)
            if worker is not None:
                log.info("removing %s: %s", worker.name, decision.reason)
                self._drain(worker, now)
                self.decisions["removed"] += 1

    def _least_busy(self, status: dict[str, Any]) -> WorkerProcess | None:
        sessions = {w["name"]: w["sessions"] for w in status["workers"]}
        active = self.pool.active()
        if not active:
            return None
        return min(active, key=lambda w: (sessions.get(w.name, 0), -w.index))

    def _drain(self, worker: WorkerProcess, now: float) -> None:
        """Ask the broker to move ``worker``'s blocks away at their episode ends."""
        worker.draining_since = now
        try:
            reply = admin_request(
                self._admin, {"command": "drain", "worker": worker.name}, curve=self._curve
            )
        except AdminError as exc:
            log.warning("drain %s: %s; stopping it when it holds no block", worker.name, exc)
            return
        if not reply.get("ok"):  # not registered yet: it holds nothing
            log.info("drain %s: %s", worker.name, reply.get("error"))

    def _finish_drains(self, status: dict[str, Any], now: float) -> None:
        blocks = {w["name"]: w["blocks"] for w in status["workers"]}
        timeout = self.config.autoscale.drain_timeout
        for worker in self.pool.draining():
            held = blocks.get(worker.name, 0)
            assert worker.draining_since is not None
            waited = now - worker.draining_since
            if held and waited < timeout:
                continue
            if held:
                log.warning(
                    "%s still holds %d blocks after %.0f s of draining: stopping it (its "
                    "blocks are re-homed, their episodes restart)",
                    worker.name,
                    held,
                    waited,
                )
            self.pool.stop(worker)

    # -- figures ------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """What the autoscaler's /metrics shows (``observability.families``)."""
        last = self.history[-1] if self.history else None
        return {
            "workers": len(self.pool.active()),
            "workers_draining": len(self.pool.draining()),
            "workers_min": self.minimum,
            "workers_max": self.maximum,
            "sessions": last.sessions if last else 0,
            "capacity_sessions": last.capacity if last else 0,
            "added_total": self.decisions["added"],
            "removed_total": self.decisions["removed"],
            "restarted_total": self.pool.restarted,
            "refused_total": self.pool.refused,
        }

    def history_rows(self) -> list[dict[str, Any]]:
        return [asdict(look) for look in self.history]
