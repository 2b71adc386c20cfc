"""The worker registry: who registered, their capacity, liveness, drain state and stats."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Worker:
    """One registered worker: ``identity`` is its DEALER identity (``name#instance``),
    ``name`` its cluster-unique name (``worker-0@host``), ``instance`` its process's token."""

    identity: bytes
    name: str
    instance: str
    pid: int
    capacity: int
    registered: float
    last_seen: float
    draining: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


class WorkerRegistry:
    """Registered workers by identity, with the liveness rule of docs/exchange.md."""

    def __init__(self, interval: float, liveness: int, max_sessions: int | None) -> None:
        self.interval = interval
        self.liveness = liveness
        self.max_sessions = max_sessions
        self._workers: dict[bytes, Worker] = {}

    def __len__(self) -> int:
        return len(self._workers)

    def __iter__(self) -> Iterator[Worker]:
        return iter(list(self._workers.values()))

    def __contains__(self, identity: object) -> bool:
        return identity in self._workers

    def get(self, identity: bytes) -> Worker | None:
        return self._workers.get(identity)

    def by_label(self, name: str) -> Worker | None:
        """The worker called ``name`` (its name, or its socket identity as text)."""
        for worker in self._workers.values():
            if worker.name == name:
                return worker
        for worker in self._workers.values():
            if worker.identity.decode("utf-8", "replace") == name:
                return worker
        return None

    def holder(self, name: str, identity: bytes) -> Worker | None:
        """The registered worker, other than ``identity``, that holds the name ``name``."""
        for worker in self._workers.values():
            if worker.name == name and worker.identity != identity:
                return worker
        return None

    def register(self, identity: bytes, body: dict[str, Any], now: float) -> Worker:
        """Add (or replace) the worker ``identity`` from its REG body."""
        capacity = int(body["capacity"])
        if self.max_sessions is not None:
            capacity = min(capacity, self.max_sessions)
        name, instance = str(body["worker"]), str(body["instance"])
        worker = Worker(identity, name, instance, int(body["pid"]), capacity, now, now)
        self._workers[identity] = worker
        return worker

    def remove(self, identity: bytes) -> Worker | None:
        return self._workers.pop(identity, None)

    def seen(self, identity: bytes, now: float) -> Worker | None:
        """Record a sign of life; the worker, or None when it is not registered."""
        worker = self._workers.get(identity)
        if worker is not None:
            worker.last_seen = now
        return worker

    @property
    def timeout(self) -> float:
        """Silence after which a worker is dead: ``heartbeat_liveness`` intervals."""
        return self.interval * self.liveness

    def alive(self, worker: Worker, now: float) -> bool:
        return now - worker.last_seen <= self.timeout

    def dead(self, now: float) -> list[Worker]:
        """Workers silent for longer than ``timeout``."""
        return [w for w in self._workers.values() if not self.alive(w, now)]
