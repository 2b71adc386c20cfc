"""One parameter-server shard: a PULL for gradient slices, a PUB for weight slices.

The shard owns slice ``shard_bounds(param_count, shards)[shard]`` of the model and
its optimizer state (``SliceUpdater``). Its loop waits for worker messages, drains
every waiting one, applies them by the configured rule and publishes the new
weights once per drain. Every ``heartbeat_interval`` it publishes a heartbeat, and
republishes its weights when nothing was published for that long (late
subscribers); a HELLO makes it republish at once. A malformed or misplaced message
is counted and dropped: a shard never dies of a peer's mistake.

Shard 0 also holds the algorithm's shared statistics (``ParameterServerSpec.
statistics_size``): it adds the deltas workers send and publishes the totals.
Workers' heartbeats carry their recent score; the mean over live workers ranks
this shard's checkpoints. Every heartbeat interval the shard sends its figures
(weight norm, staleness, updates per second, global step) to the metrics collector.

Counters: every shard sums the environment steps and episodes its gradients cover;
shard 0's ``global_step`` is the one workers read. When it reaches
``max_global_step`` the shard stops accepting gradients, publishes stopping
heartbeats for ``heartbeat_liveness`` intervals (the other shards hear of it from
the workers' heartbeats) and its ``run`` returns.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.daemon import StopFlag
from relaax_zmq.errors import ConfigError, ProtocolError
from relaax_zmq.learner import ParameterServerSpec
from relaax_zmq.metrics import MetricsSender, names
from relaax_zmq.ps import wire
from relaax_zmq.ps.optimizer import Optimizer
from relaax_zmq.ps.partition import shard_bounds
from relaax_zmq.ps.plugin import initial_seed, load_spec
from relaax_zmq.ps.state import ShardCheckpoints, ShardState
from relaax_zmq.ps.updates import APPLIED, DROP_REASONS, NONFINITE, QUEUED, SliceUpdater
from relaax_zmq.security import PeerGate, peer_gate
from relaax_zmq.sockets import gradient_hwm, open_socket, socket_map

log = logging.getLogger(__name__)

#: Longest single wait, so that a stop request is noticed quickly (seconds).
POLL_CAP = 0.05
#: Messages handled in one drain at most before weights are published ...
DRAIN_MESSAGES = 1024
#: ... and seconds spent in one drain at most (heartbeats must keep going under a backlog).
DRAIN_SECONDS = 0.25
#: Publication buffers reused once ZeroMQ has let go of them (fresh ones cost page faults).
PUBLISH_BUFFERS = 4
#: Most of its time a busy shard spends publishing weights: after a publication that took
#: t seconds the next waits (1 / PUBLISH_SHARE - 1) * t (a large slice is published less
#: often than every update; a small one after every drain).
PUBLISH_SHARE = 0.2
#: Seconds between the shard's INFO log lines with its figures.
STATS_LOG_INTERVAL = 10.0
#: How long closing the PUB may take to deliver the last heartbeats (milliseconds).
CLOSE_LINGER_MS = 500
#: Largest global step, episode count and adopted version a shard takes from workers (a
#: message past it is refused): exact as a float64 metric, far from the int64 of checkpoints
#: and the u64 of the wire, and beyond any real run (285 years at a million steps a second).
MAX_COUNT = 1 << 53


@dataclass
class WorkerSeen:
    """What a shard knows about one worker."""

    last_heard: float
    gradients: int = 0
    score: float = math.nan  # the worker's recent mean of best_metric


class Shard:
    """Shard ``shard`` of ``config.parameter_servers`` (see the module docstring).

    Args:
        config: the app config (parameter servers, algorithm, workers.count, environment.seed).
        shard: this shard's index.
        spec: the algorithm's parameter-server side; default: from ``config.algorithm``.
        context: ZeroMQ context; default: a private one, terminated by ``run``.
        checkpoints: where checkpoints go (``relaax_zmq.ps.state``); None: none.
        inproc: bind ``inproc://`` endpoints (components as threads of one process).
    """

    def __init__(
        self,
        config: AppConfig,
        shard: int,
        *,
        spec: ParameterServerSpec | None = None,
        context: zmq.Context | None = None,
        checkpoints: ShardCheckpoints | None = None,
        inproc: bool = False,
    ) -> None:
        ps = config.parameter_servers
        if not 0 <= shard < ps.shards:
            raise ConfigError("--shard", f"expected 0..{ps.shards - 1}, got {shard}")
        spec = spec if spec is not None else load_spec(config, shard)
        if spec is None:
            raise ConfigError(
                "algorithm", "the algorithm has no parameter_server module: it needs no shards"
            )
        self.config, self.ps, self.shard, self.spec = config, ps, shard, spec
        self.slice = shard_bounds(spec.param_count, ps.shards)[shard]
        initial = spec.initial_vector(initial_seed(config))[self.slice.offset : self.slice.stop]
        optimizer = Optimizer(spec.optimizer, self.slice.count, self.slice.offset)
        sync_workers = ps.sync_workers or config.workers.count
        self.updater = SliceUpdater(ps, initial, optimizer, sync_workers=sync_workers)
        self.incarnation = secrets.randbits(64) or 1
        self.global_step = 0
        self.episodes = 0
        self.stopping = False
        self.counters: dict[str, int] = dict.fromkeys(
            ("gradients", "applied", "queued", "hellos", "heartbeats", "malformed", "errors")
            + DROP_REASONS
            + ("dropped_stopping", "published", "republished", "adopted")
            + ("checkpoints_saved", "checkpoint_failures", "refused"),
            0,
        )
        self.workers: dict[str, WorkerSeen] = {}
        #: shard 0: totals of the shared statistics and how many deltas they hold
        self.statistics = np.zeros(spec.statistics_size if shard == 0 else 0, np.float64)
        self.statistics_updates = 0
        self.checkpoints = checkpoints
        self.metrics: MetricsSender | None = None
        self._specs = socket_map(config, inproc=inproc)
        self._context = context
        self._pull: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._republish = False
        self._published_version = -1
        self._published_statistics = -1
        self._published_at = -float("inf")
        self._publish_gap = 0.0  # seconds between publications (PUBLISH_SHARE)
        self._buffers: list[tuple[np.ndarray, list[zmq.MessageTracker] | None]] = []
        self._metered = (time.monotonic(), 0)
        self._stop_at: float | None = None
        self._gate: PeerGate | None = None  # with CURVE: refuses keys revoked since handshake

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set or training stopped; the last state is checkpointed."""
        own_context = self._context is None
        context = zmq.Context() if own_context else self._context
        assert context is not None
        try:
            self._checkpoint(start=True)
            pull = self._specs[f"ps[{self.shard}].gradients"]
            pull = dataclasses.replace(pull, hwm=gradient_hwm(self.slice.count))
            self._pull = open_socket(context, pull)
            self._gate = peer_gate(context, pull.name, pull.curve)
            self._pub = open_socket(context, self._specs[f"ps[{self.shard}].weights"])
            self.metrics = MetricsSender.from_config(
                self.config, f"ps-{self.shard}", context=context
            )
            log.info(
                "shard %d/%d: elements %d..%d of %d, %s/%s, incarnation %016x, version %d",
                self.shard,
                self.ps.shards,
                self.slice.offset,
                self.slice.stop,
                self.spec.param_count,
                self.ps.update,
                self.ps.effective_combine,
                self.incarnation,
                self.updater.version,
            )
            self._loop(stop)
            self._checkpoint(final=True)
        finally:
            for sock, linger in ((self._pull, 0), (self._pub, CLOSE_LINGER_MS)):
                if sock is not None:
                    sock.close(linger=linger)
            self._pull = self._pub = None
            if self.metrics is not None:
                self.metrics.close()
                self.metrics = None
            if own_context:
                context.term()
            log.info("shard %d stopped: %s", self.shard, self._summary())

    def _checkpoint(self, *, start: bool = False, final: bool = False) -> None:
        """The one place checkpoints happen: restore at start, save when due and at the end."""
        hook = self.checkpoints
        if hook is None:
            return
        try:
            if start:
                state = hook.restore()
                if state is not None:
                    self.load_state(state)
                    log.info("shard %d restored version %d", self.shard, self.updater.version)
            elif final or hook.due(self.global_step):
                saved = hook.save(self.state())
                self.counters["checkpoints_saved" if saved else "checkpoint_failures"] += 1
        except Exception:
            if start:
                raise
            self.counters["checkpoint_failures"] += 1
            log.exception("shard %d: checkpoint failed", self.shard)

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self, stop: StopFlag) -> None:
        assert self._pull is not None
        interval = self.ps.heartbeat_interval
        grace = interval * self.ps.heartbeat_liveness
        now = time.monotonic()
        self._publish_weights(now)
        next_beat, next_log = now, now + STATS_LOG_INTERVAL
        while not stop.is_set():
            wait = min(max(0.0, next_beat - now), POLL_CAP)
            publish_at = self._published_at + self._publish_gap
            if self._unpublished():
                wait = min(wait, max(0.0, publish_at - now))
            if self._pull.poll(int(wait * 1000), zmq.POLLIN):
                self._drain(time.monotonic())
            now = time.monotonic()
            if self.updater.sync and self.updater.close_round(self._live_workers(now)):
                self.counters["applied"] += 1
            republish = self._republish
            if self._unpublished() and now >= self._published_at + self._publish_gap:
                self._publish_weights(now)
            if republish or self.statistics_updates != self._published_statistics:
                self._publish_statistics()
            if now >= next_beat:
                self._beat(now, interval)
                next_beat = now + interval
            if now >= next_log:
                log.info("shard %d: %s", self.shard, self._summary())
                next_log = now + STATS_LOG_INTERVAL
            if self._stop_at is None:
                self._check_stop(now)
            elif now - self._stop_at >= grace:
                break
            if not self.stopping:
                self._checkpoint()

    def _drain(self, now: float) -> None:
        assert self._pull is not None
        deadline = now + min(DRAIN_SECONDS, self.ps.heartbeat_interval / 4)
        for _ in range(DRAIN_MESSAGES):
            if time.monotonic() > deadline:
                return
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            why = None if self._gate is None else self._gate.refusal(frames[-1])
            if why is not None:  # a worker whose key was revoked after its handshake
                self.counters["refused"] += 1
                _throttled(self.counters["refused"], "shard %d refused: %s", self.shard, why)
                continue
            try:
                self._on_message(wire.decode_to_shard(frames, self.shard), now)
            except ProtocolError as exc:
                self.counters["malformed"] += 1
                n = self.counters["malformed"]
                _throttled(n, "shard %d dropped a message: %s", self.shard, exc)
            except Exception:  # a bug must not take the shard down with it
                self.counters["errors"] += 1
                log.exception("shard %d: handling a message failed", self.shard)

    def _on_message(self, message: wire.ToShard, now: float) -> None:
        seen = self.workers.get(message.worker)
        if seen is None:
            seen = self.workers[message.worker] = WorkerSeen(now)
        seen.last_heard = now
        if isinstance(message, wire.Gradient):
            self._on_gradient(message, seen, now)
        elif isinstance(message, wire.Statistics):
            self._on_statistics(message)
        elif isinstance(message, wire.Hello):
            if message.known_version > MAX_COUNT:
                raise ProtocolError(
                    "ps.hello.known_version", f"at most {MAX_COUNT}", message.known_version
                )
            self.counters["hellos"] += 1
            self._republish = True
            if self.updater.adopt_version(message.known_version):
                self.counters["adopted"] += 1
                version = self.updater.version
                log.info(
                    "shard %d: version %d adopted from %s", self.shard, version, message.worker
                )
        else:
            self.counters["heartbeats"] += 1
            seen.score = message.score
            limit = self.ps.max_global_step
            relayed = limit is not None and message.global_step >= limit
            if (message.stopping or relayed) and self.shard != 0:
                self._begin_stop(now, f"worker {message.worker} relays shard 0's stop")

    def _on_gradient(self, message: wire.Gradient, seen: WorkerSeen, now: float) -> None:
        if message.offset != self.slice.offset:
            raise ProtocolError("ps.gradient.offset", self.slice.offset, message.offset)
        if message.values.size != self.slice.count:
            raise ProtocolError("ps.gradient.count", self.slice.count, message.values.size)
        steps, episodes = self.global_step + message.steps, self.episodes + message.episodes
        if max(steps, episodes) > MAX_COUNT:
            raise ProtocolError(
                "ps.gradient.steps",
                f"totals of at most {MAX_COUNT}",
                f"{steps} steps, {episodes} episodes",
            )
        if self.stopping:
            self.counters["dropped_stopping"] += 1
            return
        self.counters["gradients"] += 1
        seen.gradients += 1
        self.global_step, self.episodes = steps, episodes
        self.updater.optimizer.at_global_step(self.global_step)
        live = self._live_workers(now)
        outcome = self.updater.offer(message.worker, message.base_version, message.values, live)
        if outcome == APPLIED:
            self.counters["applied"] += 1
        elif outcome == QUEUED:
            self.counters["queued"] += 1
        else:
            self.counters[outcome] += 1

    def _on_statistics(self, message: wire.Statistics) -> None:
        if message.values.size != self.statistics.size:
            raise ProtocolError("ps.statistics.count", self.statistics.size, message.values.size)
        totals = self.statistics + message.values
        if not np.isfinite(totals).all():  # NaN or inf in the deltas, or totals that overflow
            self.counters[NONFINITE] += 1
            return
        self.statistics = totals
        self.statistics_updates += 1

    def _live(self, now: float) -> list[WorkerSeen]:
        silence = self.ps.heartbeat_interval * self.ps.heartbeat_liveness
        return [w for w in list(self.workers.values()) if now - w.last_heard <= silence]

    def _live_workers(self, now: float) -> int:
        return len(self._live(now))

    def score(self, now: float | None = None) -> float | None:
        """Mean of the live workers' recent scores; None while none has one."""
        scores = [w.score for w in self._live(time.monotonic() if now is None else now)]
        known = [v for v in scores if math.isfinite(v)]
        return sum(known) / len(known) if known else None

    def _check_stop(self, now: float) -> None:
        limit = self.ps.max_global_step
        if limit is not None and self.global_step >= limit:
            self._begin_stop(now, f"global step {self.global_step} >= max_global_step {limit}")

    def _begin_stop(self, now: float, why: str) -> None:
        if self.stopping:
            return
        log.info("shard %d stopping: %s", self.shard, why)
        self.stopping = True
        self._stop_at = now
        self._publish_weights(now)
        self._publish(self._heartbeat())

    # -- publishing ---------------------------------------------------------------------------

    def _unpublished(self) -> bool:
        """A HELLO asked for the weights, or a version was made since the last publication."""
        return self._republish or self.updater.version != self._published_version

    def _publish_weights(self, now: float) -> None:
        """The slice as it is now (a copy: ZeroMQ sends it later, the slice keeps changing)."""
        started = time.perf_counter()
        republish = self.updater.version == self._published_version
        slot, values = self._publish_buffer()
        np.copyto(values, self.updater.params)
        message = wire.Weights(
            self.shard,
            self.incarnation,
            self.updater.version,
            self.global_step,
            self.episodes,
            self.slice.offset,
            self.spec.param_count,
            values,
        )
        trackers = self._publish(message, track=True)
        if trackers is not None:
            self.counters["republished" if republish else "published"] += 1
        if slot is not None:
            self._buffers[slot] = (values, trackers)
        self._publish_gap = (time.perf_counter() - started) * (1 / PUBLISH_SHARE - 1)
        self._published_version = self.updater.version
        self._published_at = now
        self._republish = False

    def _publish_statistics(self) -> None:
        """Shard 0's statistics totals (a copy: they keep changing); nothing without them."""
        if self.statistics.size:
            totals = wire.StatisticsTotals(
                self.shard, self.incarnation, self.statistics_updates, self.statistics.copy()
            )
            self._publish(totals)
        self._published_statistics = self.statistics_updates

    def _beat(self, now: float, interval: float) -> None:
        self._publish(self._heartbeat())
        if now - self._published_at >= interval:
            self._publish_weights(now)
            self._publish_statistics()
        self._report_metrics(now)
        silence = 10 * interval * self.ps.heartbeat_liveness
        for name in [n for n, w in self.workers.items() if now - w.last_heard > silence]:
            del self.workers[name]

    def _report_metrics(self, now: float) -> None:
        """The shard's figures since the last report, to the metrics collector."""
        if self.metrics is None:
            return
        since, applied_then = self._metered
        applied = self.updater.updates
        self._metered = (now, applied)
        staleness, _ = self.updater.staleness.take_recent()
        m = self.metrics
        m.scalar(names.WEIGHT_NORM, float(np.linalg.norm(self.updater.params)))
        m.scalar(names.STALENESS, staleness)
        if now > since:
            m.scalar(names.UPDATES_PER_SECOND, (applied - applied_then) / (now - since))
        m.scalar(names.GLOBAL_STEP, self.global_step)
        m.scalar(names.LEARNING_RATE, self.updater.optimizer.lr)
        if self.checkpoints is not None:
            m.scalar(names.CHECKPOINT_FAILURES, self.counters["checkpoint_failures"])
        m.flush(self.global_step)

    def _heartbeat(self) -> wire.ShardHeartbeat:
        return wire.ShardHeartbeat(
            self.shard,
            self.incarnation,
            self.updater.version,
            self.global_step,
            self.episodes,
            self.stopping,
        )

    def _publish_buffer(self) -> tuple[int | None, np.ndarray]:
        """A buffer for the next publication: a pooled one ZeroMQ is done with, else a new one.

        Returns its pool slot (None: a one-off, the pool is full and all of it in flight,
        held by slow subscribers' queues).
        """
        for slot, (values, trackers) in enumerate(self._buffers):
            if trackers is None or all(t.done for t in trackers):
                return slot, values
        values = np.empty(self.slice.count, np.float32)
        if len(self._buffers) < PUBLISH_BUFFERS:
            self._buffers.append((values, None))
            return len(self._buffers) - 1, values
        return None, values

    def _publish(self, message: wire.ToWorker, *, track: bool = False) -> Any:
        """Send ``message``; with ``track`` the ``MessageTracker`` of each of its frames.

        Else True. None when the PUB refused it (it drops rather than blocks); logged.
        """
        assert self._pub is not None
        frames = wire.encode(message)
        trackers = []
        try:
            for i, frame in enumerate(frames):
                more = zmq.SNDMORE if i < len(frames) - 1 else 0
                sent = self._pub.send(frame, zmq.NOBLOCK | more, copy=False, track=track)
                trackers.append(sent)
        except zmq.ZMQError as exc:
            log.warning("shard %d: publishing failed: %s", self.shard, exc)
            return None
        return trackers if track else True

    # -- state --------------------------------------------------------------------------------

    def state(self) -> ShardState:
        """A copy of everything needed to resume (see ``relaax_zmq.ps.state``)."""
        return ShardState(
            shard=self.shard,
            shards=self.ps.shards,
            offset=self.slice.offset,
            param_count=self.spec.param_count,
            params=self.updater.params.copy(),
            version=self.updater.version,
            global_step=self.global_step,
            optimizer=self.updater.optimizer.state(),
            counters={
                "episodes": self.episodes,
                "gradients": self.counters["gradients"],
                "statistics_updates": self.statistics_updates,
            },
            extras={"statistics": self.statistics.copy()} if self.statistics.size else {},
            score=self.score(),
        )

    def load_state(self, state: ShardState) -> None:
        """Resume from ``state``: same shard of the same partition of the same model."""
        expected = (self.shard, self.ps.shards, self.slice.offset, self.spec.param_count)
        got = (state.shard, state.shards, state.offset, state.param_count)
        if got != expected:
            raise ValueError(
                f"state of shard {got[0]}/{got[1]} at offset {got[2]} of {got[3]} parameters; "
                f"this is shard {expected[0]}/{expected[1]} at {expected[2]} of {expected[3]}"
            )
        params = np.asarray(state.params, np.float32)
        self.updater.optimizer.load_state(state.optimizer)
        self.updater.load(params, state.version)
        self.global_step = int(state.global_step)
        self.episodes = int(state.counters.get("episodes", 0))
        self.updater.optimizer.at_global_step(self.global_step)
        statistics = state.extras.get("statistics")
        if statistics is not None and statistics.size == self.statistics.size:
            self.statistics = np.array(statistics, np.float64)
            self.statistics_updates = int(state.counters.get("statistics_updates", 0))
        elif self.statistics.size:
            log.warning(
                "shard %d: the checkpoint holds no statistics of size %d: starting from zero",
                self.shard,
                self.statistics.size,
            )

    def stats(self) -> dict[str, Any]:
        """Figures for logs and metrics: version, counters, staleness, workers.

        Safe to call from another thread (tests, a metrics reporter): it only reads.
        """
        now = time.monotonic()
        staleness = self.updater.staleness
        return {
            "shard": self.shard,
            "version": self.updater.version,
            "global_step": self.global_step,
            "episodes": self.episodes,
            "stopping": self.stopping,
            "staleness_mean": staleness.mean,
            "score": self.score(now),
            "statistics_updates": self.statistics_updates,
            "staleness_max": staleness.max,
            "pending": self.updater.pending(),
            "workers_live": self._live_workers(now),
            "worker_gradients": {n: w.gradients for n, w in list(self.workers.items())},
            **self.counters,
        }

    def _summary(self) -> str:
        s = self.stats()
        mean, top = s["staleness_mean"], s["staleness_max"]
        drops = "".join(f"{k}={s[k]} " for k in DROP_REASONS + ("refused",) if s[k])
        workers = " ".join(f"{n}:{g}" for n, g in sorted(s["worker_gradients"].items()))
        return (
            f"version {s['version']} global_step {s['global_step']} episodes {s['episodes']} "
            f"gradients {s['gradients']} applied {s['applied']} staleness mean {mean:.2f} "
            f"max {top} malformed {s['malformed']} {drops}checkpoints_saved "
            f"{s['checkpoints_saved']} checkpoint_failures {s['checkpoint_failures']} "
            f"workers [{workers}]"
        )


def _throttled(count: int, text: str, *args: object) -> None:
    """Warn for the first few, then every 1000th (a flood must not flood the log)."""
    if count <= 10 or count % 1000 == 0:
        log.warning(text, *args)
