"""One parameter-server shard daemon: a PULL for gradient slices, a PUB for weight slices.

The state and rules are ``ShardCore``'s (``relaax_zmq.ps.shard_core``, no sockets); this
module adds the sockets, the publisher (buffer pool, pacing) and the loop.

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
import time
from typing import Any

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core import ParameterServerSpec
from relaax_zmq.errors import ConfigError, ProtocolError
from relaax_zmq.metrics import MetricsSender, names
from relaax_zmq.ps import wire
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.ps.publisher import Publisher
from relaax_zmq.ps.shard_core import Publish, ShardCore
from relaax_zmq.ps.state import ShardCheckpoints, ShardState
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.sockets import gradient_hwm, open_socket, socket_map
from relaax_zmq.security import PeerGate, peer_gate

log = logging.getLogger(__name__)

#: Longest single wait, so that a stop request is noticed quickly (seconds).
POLL_CAP = 0.05
#: Messages handled in one drain at most before weights are published ...
DRAIN_MESSAGES = 1024
#: ... and seconds spent in one drain at most (heartbeats must keep going under a backlog).
DRAIN_SECONDS = 0.25
#: Seconds between the shard's INFO log lines with its figures.
STATS_LOG_INTERVAL = 10.0
#: How long closing the PUB may take to deliver the last heartbeats (milliseconds).
CLOSE_LINGER_MS = 500


class Shard(ShardCore):
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
        spec = spec if spec is not None else load_spec(config, shard)
        if spec is None:
            raise ConfigError(
                "algorithm", "the algorithm has no parameter_server module: it needs no shards"
            )
        super().__init__(config, shard, spec)
        self.config = config
        self.checkpoints = checkpoints
        self.metrics: MetricsSender | None = None
        self._specs = socket_map(config, inproc=inproc)
        self._context = context
        self._pull: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._publisher: Publisher | None = None
        self._republish = False  # a HELLO asked for the weights
        self._published_statistics = -1
        self._metered = (time.monotonic(), 0)
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
            self._publisher = Publisher(self._pub, self.shard, self.slice.count)
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
            self._pull = self._pub = self._publisher = None
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
                self.counters.count("checkpoints_saved" if saved else "checkpoint_failures")
        except Exception:
            if start:
                raise
            self.counters.checkpoint_failures += 1
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
            if self._unpublished():
                wait = min(wait, self._out.wait(now))
            if self._pull.poll(int(wait * 1000), zmq.POLLIN):
                self._drain(time.monotonic())
            now = time.monotonic()
            self.close_round(now)
            republish = self._republish
            if self._unpublished() and self._out.due(now):
                self._publish_weights(now)
            if republish or self.statistics_updates != self._published_statistics:
                self._publish_statistics()
            if now >= next_beat:
                self._beat(now, interval)
                next_beat = now + interval
            if now >= next_log:
                log.info("shard %d: %s", self.shard, self._summary())
                next_log = now + STATS_LOG_INTERVAL
            if self.stop_at is None:
                self.follow(self.check_stop(now), now)
            elif now - self.stop_at >= grace:
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
                self.counters.refused += 1
                _throttled(self.counters.refused, "shard %d refused: %s", self.shard, why)
                continue
            try:
                publish = self.handle(wire.decode_to_shard(frames, self.shard), now)
            except ProtocolError as exc:
                self.counters.malformed += 1
                n = self.counters.malformed
                _throttled(n, "shard %d dropped a message: %s", self.shard, exc)
                continue
            except Exception:  # a bug must not take the shard down with it
                self.counters.errors += 1
                log.exception("shard %d: handling a message failed", self.shard)
                continue
            self.follow(publish, now)

    def follow(self, publish: Publish, now: float) -> None:
        """Do what a handled message or the stop rule asks to publish."""
        self._republish |= publish.republish
        if publish.stop:
            self._publish_weights(now)
            self._publish(self.heartbeat())

    # -- publishing ---------------------------------------------------------------------------

    @property
    def _out(self) -> Publisher:
        assert self._publisher is not None, "publishing before run"
        return self._publisher

    def _unpublished(self) -> bool:
        """A HELLO asked for the weights, or a version was made since the last publication."""
        return self._republish or self.updater.version != self._out.version

    def _publish_weights(self, now: float) -> None:
        """The slice as it is now."""
        republish = self.updater.version == self._out.version
        if self._out.weights(self.weights, now):
            self.counters.count("republished" if republish else "published")
        self._republish = False

    def _publish(self, message: wire.ToWorker) -> None:
        self._out.send(message)

    def _publish_statistics(self) -> None:
        """Shard 0's statistics totals (a copy: they keep changing); nothing without them."""
        if self.statistics.size:
            self._publish(self.statistics_totals())
        self._published_statistics = self.statistics_updates

    def _beat(self, now: float, interval: float) -> None:
        self._publish(self.heartbeat())
        if now - self._out.at >= interval:
            self._publish_weights(now)
            self._publish_statistics()
        self._report_metrics(now)
        self.forget_silent(now)

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
            m.scalar(names.CHECKPOINT_FAILURES, self.counters.checkpoint_failures)
        m.flush(self.global_step)

    # -- state --------------------------------------------------------------------------------

    def state(self) -> ShardState:
        """A copy of everything needed to resume (see ``relaax_zmq.ps.state``)."""
        return self.snapshot(time.monotonic())

    def score(self, now: float | None = None) -> float | None:
        """Mean of the live workers' recent scores; None while none has one."""
        return self.score_at(time.monotonic() if now is None else now)

    def stats(self) -> dict[str, Any]:
        """Figures for logs and metrics (only reads: safe from another thread)."""
        return self.figures(time.monotonic())

    def _summary(self) -> str:
        return self.summary(time.monotonic())


def _throttled(count: int, text: str, *args: object) -> None:
    """Warn for the first few, then every 1000th (a flood must not flood the log)."""
    if count <= 10 or count % 1000 == 0:
        log.warning(text, *args)
