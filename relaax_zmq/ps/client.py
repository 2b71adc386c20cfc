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
from typing import Any

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps import wire
from relaax_zmq.ps.partition import shard_bounds
from relaax_zmq.ps.views import ClientCounters, ShardViews, checked_delta, checked_gradient
from relaax_zmq.runtime.sockets import gradient_hwm, open_socket, socket_map

log = logging.getLogger(__name__)

#: Publications read from one shard in one ``poll`` at most.
DRAIN_MESSAGES = 256
#: Longest single wait inside ``wait_*`` (seconds).
WAIT_STEP = 0.05


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
        owner: whose sockets these are in the socket map (``worker``, or ``learner``: a
            central learner pushes gradients as a worker does, under its own key role).
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
        owner: str = "worker",
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
        #: this worker's recent mean of ``checkpoint.best_metric`` (NaN: none yet)
        self.score = float("nan")
        self.counters = ClientCounters()
        self.views = ShardViews(
            self.bounds, param_count, statistics_size, self.interval, self.silence, self.counters
        )
        self._statistics_delta = np.zeros(statistics_size, np.float64)
        self._statistics_dirty = False
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        specs = socket_map(config, inproc=inproc)
        self._push: list[zmq.Socket] = []
        self._sub: list[zmq.Socket] = []
        self._poller = zmq.Poller()
        try:
            for i in range(ps.shards):
                push = specs[f"{owner}.ps[{i}].gradients"]
                push = dataclasses.replace(push, hwm=gradient_hwm(self.bounds[i].count))
                self._push.append(open_socket(self._context, push))
                sub = open_socket(self._context, specs[f"{owner}.ps[{i}].weights"])
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
        view = self.views.vector.view()
        view.flags.writeable = False
        return view, self.views.versions(), self.consistent

    @property
    def consistent(self) -> bool:
        """Every slice is fresh from its shard and all have the same version."""
        return self.views.consistent

    @property
    def ready(self) -> bool:
        """Weights fit for a forward pass: consistent, or complete when mixing is allowed."""
        return self.consistent or (self.mixing_allowed and self.views.complete())

    @property
    def stopping(self) -> bool:
        """Shard 0 announced that training reached ``max_global_step``."""
        return self.views.stopping

    @property
    def global_step(self) -> int:
        """Shard 0's global step, as last heard."""
        return self.views.global_step

    @property
    def episodes(self) -> int:
        """Shard 0's episode count, as last heard."""
        return self.views.episodes

    def wait_consistent(self, timeout: float, *, newer_than: int | None = None) -> bool:
        """Poll until the weights are consistent (at a version > ``newer_than``); False on timeout."""

        def done() -> bool:
            if not self.consistent:
                return False
            return newer_than is None or self.views.shards[0].version > newer_than

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
        self._statistics_delta += checked_delta(delta, self._statistics_delta.size)
        self._statistics_dirty = True

    def statistics(self) -> np.ndarray | None:
        """Shard 0's newest totals (read-only), None before the first arrive."""
        return self.views.statistics

    def _send_statistics(self) -> None:
        if not self._statistics_dirty or not self.views.shards[0].synced:
            return
        delta = self._statistics_delta.copy()
        if self._send(0, wire.Statistics(0, self.worker_name, delta)):
            self._statistics_delta[:] = 0.0
            self._statistics_dirty = False
            self.counters.statistics_sent += 1
        else:
            self.counters.statistics_held += 1

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
        if self.stopping:
            self.counters.not_pushed_stopping += 1
            return 0
        grad = checked_gradient(gradient, self.param_count, base_versions, len(self.bounds))
        self._send_statistics()
        sent = 0
        for i, bounds in enumerate(self.bounds):
            if not self.views.shards[i].synced:
                self.counters.skipped_unsynced += 1
                continue
            values = grad[bounds.offset : bounds.stop]
            message = wire.Gradient(
                i, self.worker_name, int(base_versions[i]), steps, episodes, bounds.offset, values
            )
            if self._send(i, message):
                sent += 1
            else:
                self.counters.dropped_full += 1
        self.counters.pushes += 1
        self.counters.slices += sent
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
                    weights, hello = self.views.receive(i, wire.decode_to_worker(frames), now)
                except ProtocolError as exc:
                    self.counters.malformed += 1
                    log.warning("dropped a publication of shard %d: %s", i, exc)
                    continue
                changed |= weights
                if hello:
                    self._hello(i, now)
        self._tick(now)
        return changed

    def _tick(self, now: float) -> None:
        for i in self.views.due_hellos(now):
            self._hello(i, now)
        if now >= self._next_beat:
            self._next_beat = now + self.interval
            self._send_statistics()
            for i in range(len(self.bounds)):
                beat = wire.WorkerHeartbeat(
                    i, self.worker_name, self.global_step, self.stopping, self.score
                )
                self._send(i, beat)

    def _hello(self, i: int, now: float) -> None:
        self.views.shards[i].last_hello = now
        if self._send(i, wire.Hello(i, self.worker_name, self.views.known_version())):
            self.counters.hellos += 1

    def _send(self, i: int, message: wire.ToShard) -> bool:
        try:
            self._push[i].send_multipart(wire.encode(message), zmq.NOBLOCK, copy=False)
        except zmq.Again:  # full queue, or no live connection (ZMQ_IMMEDIATE)
            return False
        return True

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters, shard 0's global step, and the shards' versions."""
        views = self.views.shards
        return {
            **dataclasses.asdict(self.counters),
            "global_step": self.global_step,
            "stopping": int(self.stopping),
            "min_version": min(v.version for v in views),
            "max_version": max(v.version for v in views),
            "synced_shards": sum(v.synced for v in views),
        }

    def close(self) -> None:
        """Close the sockets (pending gradients are dropped); terminate a private context."""
        for sock in [*self._push, *self._sub]:
            sock.close(linger=0)
        self._push, self._sub = [], []
        if self._own_context:
            self._context.term()
            self._own_context = False
