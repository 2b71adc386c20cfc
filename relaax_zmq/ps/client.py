"""The worker side of the parameter servers: push gradient slices, assemble weight slices.

``ParameterClient`` holds one PUSH and one SUB per shard. ``push`` cuts a
full-model gradient into the shards' slices and queues them without blocking;
``poll`` drains the SUBs without blocking, copies each weight slice into one flat
vector, sends heartbeats and watches the shards' liveness. It is used from one
thread (the worker's): the worker calls ``poll`` once per loop turn, agents may call
it too before a forward pass.

Versions and consistency: every slice carries its shard's version. ``weights()``
says whether all slices have the same version ("consistent"). With
``update: sync`` (and with ``async`` unless the algorithm's spec sets
``allow_mixed_versions``) an agent must run forward passes on consistent weights
only: ``ready`` says so, ``wait_consistent`` waits for it.

Resync: a shard silent for ``heartbeat_liveness`` intervals, or one that shows a
new incarnation (it restarted), is out of sync: its slice of every gradient is
held back (counted) and the client sends HELLO until fresh weights from it arrive.
Once shard 0 announces the stop (``max_global_step``), ``stopping`` is true, pushes
send nothing and the last weights stay as they are.

Shared statistics (``statistics_size > 0``): ``add_statistics`` adds a float64 delta
to what waits for shard 0; it goes with the next ``push`` or heartbeat, and is kept
(not lost) while shard 0's queue is full. ``statistics()`` is shard 0's newest
published totals. ``score`` (set by the worker: its recent mean of
``checkpoint.best_metric``) travels in every heartbeat; shards rank checkpoints by it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps import wire
from relaax_zmq.ps.partition import shard_bounds
from relaax_zmq.sockets import gradient_hwm, open_socket, socket_map

log = logging.getLogger(__name__)

#: Publications read from one shard in one ``poll`` at most.
DRAIN_MESSAGES = 256
#: Seconds between HELLOs to a shard the client has no fresh weights from.
HELLO_RETRY = 0.2
#: Longest single wait inside ``wait_*`` (seconds).
WAIT_STEP = 0.05


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


class ParameterClient:
    """A worker's link to every shard (see the module docstring).

    Args:
        config: the app config (``parameter_servers``; ``protocol`` limits).
        param_count: length of the model's flat parameter vector.
        worker_name: the worker's name (1..255 UTF-8 bytes), as shards count it.
        context: ZeroMQ context; default: a private one, terminated by ``close``.
        allow_mixed_versions: the algorithm's ``ParameterServerSpec.allow_mixed_versions``.
        statistics_size: the algorithm's ``ParameterServerSpec.statistics_size``.
        inproc: connect over ``inproc://`` (shards as threads of this process).
    """

    def __init__(
        self,
        config: AppConfig,
        param_count: int,
        worker_name: str,
        *,
        context: zmq.Context | None = None,
        allow_mixed_versions: bool = False,
        statistics_size: int = 0,
        inproc: bool = False,
    ) -> None:
        ps = config.parameter_servers
        wire.encode(wire.Hello(0, worker_name, 0))  # refuses a name the wire cannot carry
        self.bounds = shard_bounds(param_count, ps.shards)
        self.param_count = param_count
        self.worker_name = worker_name
        self.interval = ps.heartbeat_interval
        self.silence = ps.heartbeat_interval * ps.heartbeat_liveness
        self.sync = ps.update == "sync"
        self.mixing_allowed = not self.sync and allow_mixed_versions
        self.global_step = 0
        self.episodes = 0
        #: this worker's recent mean of ``checkpoint.best_metric`` (NaN: none yet)
        self.score = float("nan")
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "pushes",
                "slices",
                "skipped_unsynced",
                "dropped_full",
                "not_pushed_stopping",
                "weights",
                "old_weights",
                "malformed",
                "hellos",
                "silences",
                "restarts",
                "statistics_sent",
                "statistics_held",
            ),
            0,
        )
        self._stopping = False
        self._vector = np.zeros(param_count, np.float32)
        self._statistics_delta = np.zeros(statistics_size, np.float64)
        self._statistics_dirty = False
        self._statistics: np.ndarray | None = None
        self._statistics_updates = -1
        self._views = [ShardView() for _ in self.bounds]
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        specs = socket_map(config, inproc=inproc)
        self._push: list[zmq.Socket] = []
        self._sub: list[zmq.Socket] = []
        self._poller = zmq.Poller()
        try:
            for i in range(ps.shards):
                push = specs[f"worker.ps[{i}].gradients"]
                push = dataclasses.replace(push, hwm=gradient_hwm(self.bounds[i].count))
                self._push.append(open_socket(self._context, push))
                sub = open_socket(self._context, specs[f"worker.ps[{i}].weights"])
                self._sub.append(sub)
                sub.setsockopt(zmq.SUBSCRIBE, wire.topic(i))
                self._poller.register(sub, zmq.POLLIN)
        except BaseException:
            self.close()
            raise
        self._next_beat = time.monotonic()

    # -- weights ------------------------------------------------------------------------------

    def weights(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """(flat vector, per-shard versions, consistent).

        The vector is a read-only view, updated in place by ``poll``: read it
        between polls. Versions are -1 for shards not heard from yet.
        """
        view = self._vector.view()
        view.flags.writeable = False
        versions = np.array([v.version for v in self._views], np.int64)
        return view, versions, self.consistent

    @property
    def consistent(self) -> bool:
        """Every slice is fresh from its shard and all have the same version."""
        views = self._views
        return all(v.synced for v in views) and len({v.version for v in views}) == 1

    @property
    def ready(self) -> bool:
        """Weights fit for a forward pass: consistent, or complete when mixing is allowed."""
        if self.consistent:
            return True
        return self.mixing_allowed and all(v.has_weights for v in self._views)

    @property
    def stopping(self) -> bool:
        """Shard 0 announced that training reached ``max_global_step``."""
        return self._stopping

    def wait_consistent(self, timeout: float, *, newer_than: int | None = None) -> bool:
        """Poll until the weights are consistent (at a version > ``newer_than``); False on timeout."""

        def done() -> bool:
            if not self.consistent:
                return False
            return newer_than is None or self._views[0].version > newer_than

        return self._wait(done, timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Poll until ``ready``; False on timeout."""
        return self._wait(lambda: self.ready, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._poller.poll(max(1, int(min(remaining, WAIT_STEP) * 1000)))

    # -- shared statistics --------------------------------------------------------------------

    def add_statistics(self, delta: np.ndarray) -> None:
        """Add ``delta`` ((statistics_size,) float64) to what goes to shard 0 (module doc)."""
        values = np.asarray(delta, np.float64)
        if values.shape != self._statistics_delta.shape:
            raise ValueError(
                f"statistics delta: expected shape {self._statistics_delta.shape}, "
                f"got {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ValueError("statistics delta: expected finite values")
        self._statistics_delta += values
        self._statistics_dirty = True

    def statistics(self) -> np.ndarray | None:
        """Shard 0's newest totals (read-only), None before the first arrive."""
        return self._statistics

    def _send_statistics(self) -> None:
        if not self._statistics_dirty or not self._views[0].synced:
            return
        delta = self._statistics_delta.copy()
        if self._send(0, wire.Statistics(0, self.worker_name, delta)):
            self._statistics_delta[:] = 0.0
            self._statistics_dirty = False
            self.counters["statistics_sent"] += 1
        else:
            self.counters["statistics_held"] += 1

    # -- gradients ----------------------------------------------------------------------------

    def push(
        self, gradient: np.ndarray, base_versions: Sequence[int], steps: int, episodes: int
    ) -> int:
        """Send each shard its slice of ``gradient``; the number of slices sent.

        ``gradient`` is the (param_count,) float32 gradient of the loss, computed on
        weights of ``base_versions`` (from ``weights()``); ``steps`` and
        ``episodes`` are the environment steps and finished episodes it covers.
        Never blocks: a slice for a shard out of sync or with a full queue is
        dropped and counted. The slices travel without a copy: do not write into
        ``gradient`` afterwards.
        """
        if self._stopping:
            self.counters["not_pushed_stopping"] += 1
            return 0
        grad = np.ascontiguousarray(gradient, dtype=np.float32)
        if grad.shape != (self.param_count,):
            raise ValueError(f"gradient: expected ({self.param_count},), got {grad.shape}")
        if len(base_versions) != len(self.bounds):
            raise ValueError(
                f"base_versions: expected {len(self.bounds)}, got {len(base_versions)}"
            )
        self._send_statistics()
        sent = 0
        for i, bounds in enumerate(self.bounds):
            if not self._views[i].synced:
                self.counters["skipped_unsynced"] += 1
                continue
            values = grad[bounds.offset : bounds.stop]
            message = wire.Gradient(
                i, self.worker_name, int(base_versions[i]), steps, episodes, bounds.offset, values
            )
            if self._send(i, message):
                sent += 1
            else:
                self.counters["dropped_full"] += 1
        self.counters["pushes"] += 1
        self.counters["slices"] += sent
        return sent

    # -- the link -----------------------------------------------------------------------------

    def poll(self) -> bool:
        """Read every waiting publication, send heartbeats and HELLOs; True if weights changed."""
        changed = False
        now = time.monotonic()
        for i, sock in enumerate(self._sub):
            for _ in range(DRAIN_MESSAGES):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                try:
                    changed |= self._on_message(i, wire.decode_to_worker(frames), now)
                except ProtocolError as exc:
                    self.counters["malformed"] += 1
                    log.warning("dropped a publication of shard %d: %s", i, exc)
        self._tick(now)
        return changed

    def _on_message(self, i: int, message: wire.ToWorker, now: float) -> bool:
        if message.shard != i:
            raise ProtocolError("ps.shard", i, message.shard)
        view = self._views[i]
        view.last_heard = now
        view.alive = True
        if isinstance(message, wire.ShardHeartbeat):
            self._on_heartbeat(i, view, message, now)
            return False
        if isinstance(message, wire.StatisticsTotals):
            self._on_statistics(message)
            return False
        return self._on_weights(i, view, message)

    def _on_statistics(self, totals: wire.StatisticsTotals) -> None:
        if totals.values.shape != self._statistics_delta.shape:
            raise ProtocolError(
                "ps.statistics_totals.count", self._statistics_delta.size, totals.values.size
            )
        if totals.updates != self._statistics_updates or self._statistics is None:
            self._statistics = totals.values.copy()
            self._statistics.flags.writeable = False
            self._statistics_updates = totals.updates

    def _on_heartbeat(self, i: int, view: ShardView, hb: wire.ShardHeartbeat, now: float) -> None:
        if view.incarnation is None:
            view.incarnation = hb.incarnation
        elif hb.incarnation != view.incarnation:
            self._restarted(i, view, hb.incarnation)
        if view.synced and hb.version > view.version and now - view.last_hello >= self.interval:
            self._hello(i, now)  # a publication went missing (a full queue): ask again
        if i == 0:
            self._from_shard0(hb.global_step, hb.episodes, hb.stopping)

    def _on_weights(self, i: int, view: ShardView, w: wire.Weights) -> bool:
        bounds = self.bounds[i]
        if w.param_count != self.param_count:
            raise ProtocolError("ps.weights.param_count", self.param_count, w.param_count)
        if w.offset != bounds.offset or w.values.size != bounds.count:
            raise ProtocolError(
                "ps.weights.slice",
                f"offset {bounds.offset} count {bounds.count}",
                f"offset {w.offset} count {w.values.size}",
            )
        if view.incarnation is not None and w.incarnation != view.incarnation:
            self._restarted(i, view, w.incarnation)
        elif view.synced and w.version < view.version:
            self.counters["old_weights"] += 1
            return False
        target = self._vector[bounds.offset : bounds.stop]
        if isinstance(w.values, wire.Payload):
            w.values.copy_into(target)
        else:
            target[...] = w.values
        if not view.synced and view.has_weights:
            log.info("shard %d: resynced at version %d", i, w.version)
        view.incarnation = w.incarnation
        view.version = w.version
        view.has_weights = view.synced = True
        self.counters["weights"] += 1
        if i == 0:
            self._from_shard0(w.global_step, w.episodes, False)
        return True

    def _restarted(self, i: int, view: ShardView, incarnation: int) -> None:
        log.warning(
            "shard %d restarted (incarnation %016x -> %016x): resyncing",
            i,
            view.incarnation or 0,
            incarnation,
        )
        self.counters["restarts"] += 1
        view.incarnation = incarnation
        view.synced = False
        self._hello(i, time.monotonic())

    def _from_shard0(self, global_step: int, episodes: int, stopping: bool) -> None:
        self.global_step = max(self.global_step, global_step)
        self.episodes = max(self.episodes, episodes)
        if stopping and not self._stopping:
            log.info("shard 0 announced the stop at global step %d", global_step)
            self._stopping = True

    def _tick(self, now: float) -> None:
        for i, view in enumerate(self._views):
            if self._stopping:
                break
            if view.alive and now - view.last_heard > self.silence:
                log.warning("shard %d silent for %.1f s: resyncing", i, now - view.last_heard)
                self.counters["silences"] += 1
                view.alive = view.synced = False
            if not view.synced and now - view.last_hello >= HELLO_RETRY:
                self._hello(i, now)
        if now >= self._next_beat:
            self._next_beat = now + self.interval
            self._send_statistics()
            for i in range(len(self._views)):
                beat = wire.WorkerHeartbeat(
                    i, self.worker_name, self.global_step, self._stopping, self.score
                )
                self._send(i, beat)

    def _hello(self, i: int, now: float) -> None:
        self._views[i].last_hello = now
        known = max(v.version for v in self._views)
        if self._send(i, wire.Hello(i, self.worker_name, max(0, known))):
            self.counters["hellos"] += 1

    def _send(self, i: int, message: wire.ToShard) -> bool:
        try:
            self._push[i].send_multipart(wire.encode(message), zmq.NOBLOCK, copy=False)
        except zmq.Again:  # full queue, or no live connection (ZMQ_IMMEDIATE)
            return False
        return True

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, shard 0's global step, and the shards' versions."""
        return {
            **self.counters,
            "global_step": self.global_step,
            "stopping": int(self._stopping),
            "min_version": min(v.version for v in self._views),
            "max_version": max(v.version for v in self._views),
            "synced_shards": sum(v.synced for v in self._views),
        }

    def close(self) -> None:
        """Close the sockets (pending gradients are dropped); terminate a private context."""
        for sock in [*self._push, *self._sub]:
            sock.close(linger=0)
        self._push, self._sub = [], []
        if self._own_context:
            self._context.term()
            self._own_context = False
