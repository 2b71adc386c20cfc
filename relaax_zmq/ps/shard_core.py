"""One shard's state and rules, without sockets: what the daemon and serial mode share.

``ShardCore`` owns the slice's ``SliceUpdater`` (optimizer, version, update rule), the
global step and episode counts, shard 0's shared statistics, the workers it heard from
and the stop rule. Its handlers take decoded messages and the time they arrived, and
return what the shard must publish because of them (``Publish``); ``relaax_zmq.ps.shard``
wraps it in sockets and a loop, ``relaax_zmq.serial`` calls it directly.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.core import ParameterServerSpec
from relaax_zmq.errors import ConfigError, ProtocolError
from relaax_zmq.ps import wire
from relaax_zmq.ps.optimizer import Optimizer
from relaax_zmq.ps.partition import shard_bounds
from relaax_zmq.ps.plugin import initial_seed
from relaax_zmq.ps.state import ShardState
from relaax_zmq.ps.updates import DROP_REASONS, NONFINITE, SliceUpdater

log = logging.getLogger("relaax_zmq.ps.shard")

#: Largest global step, episode count and adopted version a shard takes from workers (a
#: message past it is refused): exact as a float64 metric, far from the int64 of checkpoints
#: and the u64 of the wire, and beyond any real run (285 years at a million steps a second).
MAX_COUNT = 1 << 53


@dataclass
class ShardCounters:
    """What a shard counts (its stats and stop summary show every field)."""

    gradients: int = 0
    applied: int = 0
    queued: int = 0
    hellos: int = 0
    heartbeats: int = 0
    malformed: int = 0
    errors: int = 0
    dropped_stale: int = 0
    dropped_future: int = 0
    dropped_duplicate: int = 0
    dropped_nonfinite: int = 0
    dropped_stopping: int = 0
    published: int = 0
    republished: int = 0
    adopted: int = 0
    checkpoints_saved: int = 0
    checkpoint_failures: int = 0
    refused: int = 0

    def count(self, name: str) -> None:
        """One more of ``name`` (an outcome of ``SliceUpdater.offer``, say)."""
        setattr(self, name, getattr(self, name) + 1)


@dataclass
class WorkerSeen:
    """What a shard knows about one worker."""

    last_heard: float
    gradients: int = 0
    score: float = math.nan  # the worker's recent mean of best_metric


@dataclass(frozen=True)
class Publish:
    """What a handled message asks the shard to publish."""

    republish: bool = False  # the slice at the next paced chance (a HELLO asked for it)
    stop: bool = False  # the last weights and a stopping heartbeat, at once


NOTHING = Publish()


class ShardCore:
    """Shard ``shard`` of ``config.parameter_servers`` serving ``spec`` (module docstring)."""

    def __init__(self, config: AppConfig, shard: int, spec: ParameterServerSpec) -> None:
        ps = config.parameter_servers
        if not 0 <= shard < ps.shards:
            raise ConfigError("--shard", f"expected 0..{ps.shards - 1}, got {shard}")
        self.ps, self.shard, self.spec = ps, shard, spec
        self.slice = shard_bounds(spec.param_count, ps.shards)[shard]
        initial = spec.initial_vector(initial_seed(config))[self.slice.offset : self.slice.stop]
        optimizer = Optimizer(spec.optimizer, self.slice.count, self.slice.offset)
        sync_workers = ps.sync_workers or config.workers.count
        self.updater = SliceUpdater(ps, initial, optimizer, sync_workers=sync_workers)
        self.incarnation = secrets.randbits(64) or 1
        self.global_step = 0
        self.episodes = 0
        self.stopping = False
        self.stop_at: float | None = None  # when the stop began
        self.counters = ShardCounters()
        self.workers: dict[str, WorkerSeen] = {}
        #: shard 0: totals of the shared statistics and how many deltas they hold
        self.statistics = np.zeros(spec.statistics_size if shard == 0 else 0, np.float64)
        self.statistics_updates = 0

    # -- messages -----------------------------------------------------------------------------

    def handle(self, message: wire.ToShard, now: float) -> Publish:
        """Apply one decoded worker message; ``ProtocolError`` for one that does not fit."""
        seen = self.workers.get(message.worker)
        if seen is None:
            seen = self.workers[message.worker] = WorkerSeen(now)
        seen.last_heard = now
        if isinstance(message, wire.Gradient):
            self._gradient(message, seen, now)
        elif isinstance(message, wire.Statistics):
            self.add_statistics(message.values)
        elif isinstance(message, wire.Hello):
            return self._hello(message)
        else:
            self.counters.heartbeats += 1
            seen.score = message.score
            limit = self.ps.max_global_step
            relayed = limit is not None and message.global_step >= limit
            if (message.stopping or relayed) and self.shard != 0:
                return self.begin_stop(now, f"worker {message.worker} relays shard 0's stop")
        return NOTHING

    def _hello(self, message: wire.Hello) -> Publish:
        if message.known_version > MAX_COUNT:
            raise ProtocolError(
                "ps.hello.known_version", f"at most {MAX_COUNT}", message.known_version
            )
        self.counters.hellos += 1
        if self.updater.adopt_version(message.known_version):
            self.counters.adopted += 1
            version = self.updater.version
            log.info("shard %d: version %d adopted from %s", self.shard, version, message.worker)
        return Publish(republish=True)

    def _gradient(self, message: wire.Gradient, seen: WorkerSeen, now: float) -> None:
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
            self.counters.dropped_stopping += 1
            return
        self.counters.gradients += 1
        seen.gradients += 1
        self.global_step, self.episodes = steps, episodes
        self.updater.optimizer.at_global_step(self.global_step)
        live = self.live_workers(now)
        outcome = self.updater.offer(message.worker, message.base_version, message.values, live)
        self.counters.count(outcome)

    def add_statistics(self, values: np.ndarray) -> None:
        """Add a worker's statistics delta (shard 0); non-finite totals are dropped."""
        if values.size != self.statistics.size:
            raise ProtocolError("ps.statistics.count", self.statistics.size, values.size)
        totals = self.statistics + values
        if not np.isfinite(totals).all():  # NaN or inf in the deltas, or totals that overflow
            self.counters.count(NONFINITE)
            return
        self.statistics = totals
        self.statistics_updates += 1

    def close_round(self, now: float) -> bool:
        """Sync: apply the round when every live worker's gradient is in; True when it was."""
        if self.updater.sync and self.updater.close_round(self.live_workers(now)):
            self.counters.applied += 1
            return True
        return False

    # -- workers and the stop -----------------------------------------------------------------

    def live(self, now: float) -> list[WorkerSeen]:
        silence = self.ps.heartbeat_interval * self.ps.heartbeat_liveness
        return [w for w in list(self.workers.values()) if now - w.last_heard <= silence]

    def live_workers(self, now: float) -> int:
        return len(self.live(now))

    def forget_silent(self, now: float) -> None:
        """Forget workers silent for ten liveness periods."""
        silence = 10 * self.ps.heartbeat_interval * self.ps.heartbeat_liveness
        for name in [n for n, w in self.workers.items() if now - w.last_heard > silence]:
            del self.workers[name]

    def score_at(self, now: float) -> float | None:
        """Mean of the live workers' recent scores; None while none has one."""
        known = [w.score for w in self.live(now) if math.isfinite(w.score)]
        return sum(known) / len(known) if known else None

    def check_stop(self, now: float) -> Publish:
        """Begin the stop once the global step reaches ``max_global_step``."""
        limit = self.ps.max_global_step
        if limit is not None and self.global_step >= limit:
            return self.begin_stop(
                now, f"global step {self.global_step} >= max_global_step {limit}"
            )
        return NOTHING

    def begin_stop(self, now: float, why: str) -> Publish:
        """Stop taking gradients; the last weights and a stopping heartbeat go out."""
        if self.stopping:
            return NOTHING
        log.info("shard %d stopping: %s", self.shard, why)
        self.stopping = True
        self.stop_at = now
        return Publish(stop=True)

    # -- what the shard publishes -------------------------------------------------------------

    def heartbeat(self) -> wire.ShardHeartbeat:
        return wire.ShardHeartbeat(
            self.shard,
            self.incarnation,
            self.updater.version,
            self.global_step,
            self.episodes,
            self.stopping,
        )

    def weights(self, values: np.ndarray) -> wire.Weights:
        """The weights message of the slice, its values copied into ``values`` first."""
        np.copyto(values, self.updater.params)
        return wire.Weights(
            self.shard,
            self.incarnation,
            self.updater.version,
            self.global_step,
            self.episodes,
            self.slice.offset,
            self.spec.param_count,
            values,
        )

    def statistics_totals(self) -> wire.StatisticsTotals:
        """Shard 0's statistics totals (a copy: they keep changing)."""
        return wire.StatisticsTotals(
            self.shard, self.incarnation, self.statistics_updates, self.statistics.copy()
        )

    # -- state --------------------------------------------------------------------------------

    def snapshot(self, now: float) -> ShardState:
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
                "gradients": self.counters.gradients,
                "statistics_updates": self.statistics_updates,
            },
            extras={"statistics": self.statistics.copy()} if self.statistics.size else {},
            score=self.score_at(now),
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

    def figures(self, now: float) -> dict[str, Any]:
        """Version, counts, staleness, workers and counters (only reads: any thread)."""
        staleness = self.updater.staleness
        return {
            "shard": self.shard,
            "version": self.updater.version,
            "global_step": self.global_step,
            "episodes": self.episodes,
            "stopping": self.stopping,
            "staleness_mean": staleness.mean,
            "score": self.score_at(now),
            "statistics_updates": self.statistics_updates,
            "staleness_max": staleness.max,
            "pending": self.updater.pending(),
            "workers_live": self.live_workers(now),
            "worker_gradients": {n: w.gradients for n, w in list(self.workers.items())},
            **asdict(self.counters),
        }

    def summary(self, now: float) -> str:
        """The stats in one log line."""
        s = self.figures(now)
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
