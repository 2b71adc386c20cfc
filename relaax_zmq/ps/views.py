"""What a worker knows of every shard, without sockets: the assembled weights and the rules.

``ShardViews`` takes the shards' decoded publications (weights, heartbeats, statistics
totals) with the time they arrived, copies weight slices into one flat vector, and
decides consistency, readiness, resyncs after a silence or a restart, and the stop
shard 0 announces. Its handlers return what the link must send because of them (the
shards to say HELLO to); ``relaax_zmq.ps.client`` does the sending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps import wire
from relaax_zmq.ps.partition import Slice

log = logging.getLogger("relaax_zmq.ps.client")

#: Seconds between HELLOs to a shard the client has no fresh weights from.
HELLO_RETRY = 0.2


@dataclass
class ClientCounters:
    """What a worker's link counts (its ``stats`` show every field)."""

    pushes: int = 0
    slices: int = 0
    skipped_unsynced: int = 0
    dropped_full: int = 0
    not_pushed_stopping: int = 0
    weights: int = 0
    old_weights: int = 0
    malformed: int = 0
    hellos: int = 0
    silences: int = 0
    restarts: int = 0
    statistics_sent: int = 0
    statistics_held: int = 0


@dataclass
class ShardView:
    """What the client knows of one shard."""

    incarnation: int | None = None
    version: int = -1  # version of the slice in the vector; -1: none yet
    has_weights: bool = False  # the vector holds a slice from this shard
    synced: bool = False  # ... from its current incarnation, since it was last silent
    alive: bool = False
    last_heard: float = -float("inf")
    last_hello: float = -float("inf")


def checked_gradient(
    gradient: np.ndarray, param_count: int, base_versions: Sequence[int], shards: int
) -> np.ndarray:
    """A pushed gradient as float32 of the vector's shape, with a base version per shard."""
    grad = np.ascontiguousarray(gradient, dtype=np.float32)
    if grad.shape != (param_count,):
        raise ValueError(f"gradient: expected ({param_count},), got {grad.shape}")
    if len(base_versions) != shards:
        raise ValueError(f"base_versions: expected {shards}, got {len(base_versions)}")
    return grad


def checked_delta(delta: np.ndarray, size: int) -> np.ndarray:
    """A statistics delta as float64 of ``size`` values, finite."""
    values = np.asarray(delta, np.float64)
    if values.shape != (size,):
        raise ValueError(f"statistics delta: expected shape ({size},), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("statistics delta: expected finite values")
    return values


class ShardViews:
    """Every shard's view and the flat vector assembled from their slices.

    Args:
        bounds: each shard's slice of the vector.
        param_count: the vector's length.
        statistics_size: length of shard 0's statistics totals.
        interval: the shards' heartbeat interval (seconds).
        silence: seconds without a word after which a shard is out of sync.
        counters: where the link counts (shared with it).
    """

    def __init__(
        self,
        bounds: list[Slice],
        param_count: int,
        statistics_size: int,
        interval: float,
        silence: float,
        counters: ClientCounters,
    ) -> None:
        self.bounds = bounds
        self.param_count = param_count
        self.interval = interval
        self.silence = silence
        self.counters = counters
        self.shards = [ShardView() for _ in bounds]
        self.vector = np.zeros(param_count, np.float32)
        self.global_step = 0
        self.episodes = 0
        self.stopping = False
        self.statistics_size = statistics_size
        self.statistics: np.ndarray | None = None  # shard 0's newest totals (read-only)
        self._statistics_updates = -1

    # -- state --------------------------------------------------------------------------------

    @property
    def consistent(self) -> bool:
        """Every slice is fresh from its shard and all have the same version."""
        shards = self.shards
        return all(v.synced for v in shards) and len({v.version for v in shards}) == 1

    def complete(self) -> bool:
        """Every slice holds weights from its shard (maybe of different versions)."""
        return all(v.has_weights for v in self.shards)

    def versions(self) -> np.ndarray:
        return np.array([v.version for v in self.shards], np.int64)

    def known_version(self) -> int:
        """The newest version any shard published (what a HELLO tells a restarted shard)."""
        return max(0, max(v.version for v in self.shards))

    # -- publications -------------------------------------------------------------------------

    def receive(self, i: int, message: wire.ToWorker, now: float) -> tuple[bool, bool]:
        """Take shard ``i``'s publication: (the weights changed, say HELLO to shard ``i``)."""
        if message.shard != i:
            raise ProtocolError("ps.shard", i, message.shard)
        view = self.shards[i]
        view.last_heard = now
        view.alive = True
        if isinstance(message, wire.ShardHeartbeat):
            return False, self._heartbeat(i, view, message, now)
        if isinstance(message, wire.StatisticsTotals):
            self._statistics(message)
            return False, False
        return self._weights(i, view, message)

    def _statistics(self, totals: wire.StatisticsTotals) -> None:
        if totals.values.size != self.statistics_size:
            raise ProtocolError(
                "ps.statistics_totals.count", self.statistics_size, totals.values.size
            )
        if totals.updates != self._statistics_updates or self.statistics is None:
            self.statistics = totals.values.copy()
            self.statistics.flags.writeable = False
            self._statistics_updates = totals.updates

    def _heartbeat(self, i: int, view: ShardView, hb: wire.ShardHeartbeat, now: float) -> bool:
        hello = False
        if view.incarnation is None:
            view.incarnation = hb.incarnation
        elif hb.incarnation != view.incarnation:
            self.restarted(i, hb.incarnation)
            hello = True
        if view.synced and hb.version > view.version and now - view.last_hello >= self.interval:
            hello = True  # a publication went missing (a full queue): ask again
        if i == 0:
            self._from_shard0(hb.global_step, hb.episodes, hb.stopping)
        return hello

    def _weights(self, i: int, view: ShardView, w: wire.Weights) -> tuple[bool, bool]:
        bounds = self.bounds[i]
        if w.param_count != self.param_count:
            raise ProtocolError("ps.weights.param_count", self.param_count, w.param_count)
        if w.offset != bounds.offset or w.values.size != bounds.count:
            raise ProtocolError(
                "ps.weights.slice",
                f"offset {bounds.offset} count {bounds.count}",
                f"offset {w.offset} count {w.values.size}",
            )
        hello = False
        if view.incarnation is not None and w.incarnation != view.incarnation:
            self.restarted(i, w.incarnation)
            hello = True
        elif view.synced and w.version < view.version:
            self.counters.old_weights += 1
            return False, False
        target = self.vector[bounds.offset : bounds.stop]
        if isinstance(w.values, wire.Payload):
            w.values.copy_into(target)
        else:
            target[...] = w.values
        if not view.synced and view.has_weights:
            log.info("shard %d: resynced at version %d", i, w.version)
        view.incarnation = w.incarnation
        view.version = w.version
        view.has_weights = view.synced = True
        self.counters.weights += 1
        if i == 0:
            self._from_shard0(w.global_step, w.episodes, False)
        return True, hello

    def restarted(self, i: int, incarnation: int) -> None:
        """Shard ``i`` shows a new incarnation: out of sync until it sends weights."""
        view = self.shards[i]
        log.warning(
            "shard %d restarted (incarnation %016x -> %016x): resyncing",
            i,
            view.incarnation or 0,
            incarnation,
        )
        self.counters.restarts += 1
        view.incarnation = incarnation
        view.synced = False

    def _from_shard0(self, global_step: int, episodes: int, stopping: bool) -> None:
        self.global_step = max(self.global_step, global_step)
        self.episodes = max(self.episodes, episodes)
        if stopping and not self.stopping:
            log.info("shard 0 announced the stop at global step %d", global_step)
            self.stopping = True

    # -- time ---------------------------------------------------------------------------------

    def due_hellos(self, now: float) -> list[int]:
        """Shards silent too long fall out of sync; the shards to say HELLO to now."""
        due = []
        for i, view in enumerate(self.shards):
            if self.stopping:
                break
            if view.alive and now - view.last_heard > self.silence:
                log.warning("shard %d silent for %.1f s: resyncing", i, now - view.last_heard)
                self.counters.silences += 1
                view.alive = view.synced = False
            if not view.synced and now - view.last_hello >= HELLO_RETRY:
                due.append(i)
        return due
