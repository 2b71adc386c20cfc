"""The learner daemon: a PULL for the actors' unrolls (or a replay client), the algorithm's
``Learner``, and a parameter link to the shards it pushes gradients through.

Why through the shards (docs/learner.md, "Where the weights live"): the shards already
hold the optimizer state, checkpoint it, publish weights to every actor and count the
global step, so a learner keeps nothing that a restart would lose but what is queued;
one round through the shards per gradient costs ~1 ms against the batch's forward and
backward pass (bench.learner measures both).

The loop drains the PULL (bounded in messages and time), decodes each message
(``wire.decode``; a malformed one is counted and dropped, the daemon never dies of a
peer), hands it to the ``BatchAssembler`` (schema, staleness) and learns on every full
batch. Every ``heartbeat_interval`` it publishes its figures (status for /metrics, the
metrics collector, a log line every ``STATS_LOG_INTERVAL``); the parameter link
heartbeats to the shards as a worker's does.

A replay learner (``Learner.source`` "replay", apex) has no PULL: ``_replay_loop``
samples the replay servers through a ``ReplaySource`` (``learner/replay_source.py``),
learns on each batch and sends its new priorities back; the heartbeat is the same.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core_learner import Learner, LearnerContext, make_learner
from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner import wire
from relaax_zmq.learner.assembly import BatchAssembler
from relaax_zmq.learner.replay_source import ReplaySource
from relaax_zmq.metrics import MetricsSender
from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.identity import cluster_name
from relaax_zmq.runtime.registry import load_algorithm
from relaax_zmq.runtime.sockets import open_socket, socket_map

log = logging.getLogger(__name__)

#: Messages one drain reads at most, and seconds it spends at most.
DRAIN_MESSAGES = 256
DRAIN_SECONDS = 0.05
#: Longest single wait for a message (a stop request is noticed this fast).
POLL_MS = 50
#: Messages each actor's pipe queues at the learner's end (the actor's end holds
#: ``learner.queue_mib``).
RECEIVE_HWM = 8
#: Seconds between the learner's INFO log lines.
STATS_LOG_INTERVAL = 10.0


@dataclasses.dataclass
class LearnerCounters:
    """What the daemon counts besides its intake."""

    malformed: int = 0  # messages the wire decoder refused
    learn_steps: int = 0  # Learner.learn calls
    learn_seconds: float = 0.0
    transitions: int = 0  # transitions learned on (items x T)


class LearnerDaemon:
    """Learner ``index`` of ``config.learner`` (see the module docstring).

    Args:
        config: the app config (learner, parameter servers, algorithm).
        index: this learner's number (its endpoint is ``learner.endpoint`` + index).
        context: ZeroMQ context; default a private one, terminated by ``run``.
        inproc: bind and connect over ``inproc://``.
    """

    def __init__(
        self,
        config: AppConfig,
        index: int = 0,
        *,
        context: zmq.Context | None = None,
        inproc: bool = False,
    ) -> None:
        if not 0 <= index < config.learner.count:
            raise ValueError(f"learner index: expected 0..{config.learner.count - 1}, got {index}")
        self.algorithm = load_algorithm(config.algorithm)
        if self.algorithm.learner is None:
            raise ValueError(
                f"algorithm {self.algorithm.name!r} has no learner side: its workers learn "
                "themselves (impala, appo and apex have one)"
            )
        self.config = config
        self.index = index
        self.name = cluster_name(f"learner-{index}")
        self.inproc = inproc
        self.counters = LearnerCounters()
        self.learner: Learner | None = None
        self.assembler: BatchAssembler | None = None
        self.parameters: ParameterClient | None = None
        self.replay: ReplaySource | None = None  # a replay learner's intake (apex)
        self.published: dict[str, Any] | None = None  #: the last heartbeat's status (/metrics)
        self._context = context
        self._started = time.monotonic()
        self._next_beat = self._next_log = 0.0  # the first turn of a loop beats

    def run(self, stop: StopFlag) -> None:
        """Learn until ``stop`` is set; then close everything."""
        own = self._context is None
        context = zmq.Context() if own else self._context
        assert context is not None
        metrics = MetricsSender.from_config(self.config, f"learner-{self.name}", context=context)
        pull = None
        try:
            self._build(context, metrics)
            assert self.learner is not None
            if self.learner.source == "replay":  # -- the replay source (apex) --
                self.replay = ReplaySource(
                    self.config, self.learner, context, source=self.name, inproc=self.inproc
                )
                log.info("learner %s sampling %d replay servers", self.name, self.config.replay.shards)  # fmt: skip
                self._replay_loop(stop, metrics)
                return
            spec = socket_map(self.config, inproc=self.inproc)[f"learner[{self.index}].unrolls"]
            pull = open_socket(context, dataclasses.replace(spec, hwm=RECEIVE_HWM))
            log.info("learner %s listening at %s", self.name, spec.endpoint)
            self._loop(stop, pull, metrics, spec.max_message_bytes)
        finally:
            if pull is not None:
                pull.close(linger=0)
            if self.replay is not None:
                self.replay.close()
            if self.learner is not None:
                self.learner.close()
            if self.parameters is not None:
                self.parameters.close()
            metrics.close()
            if own:
                context.term()
            log.info("learner %s stopped", self.name)

    def _build(self, context: zmq.Context, metrics: MetricsSender) -> None:
        config = self.config
        spec = load_spec(config)
        if spec is None:
            raise ValueError(f"{self.algorithm.name}: a learner needs the parameter servers")
        self.parameters = ParameterClient(
            config,
            spec.param_count,
            self.name,
            context=context,
            statistics_size=spec.statistics_size,
            inproc=self.inproc,
            owner="learner",
        )
        use_threads(config.learner.torch_threads)
        self.learner = make_learner(
            self.algorithm,
            LearnerContext(
                config=config.algorithm.config,
                name=self.name,
                device=config.learner.device,
                seed=config.environment.seed,
                parameters=self.parameters,
                metrics=metrics,
            ),
        )
        self.assembler = BatchAssembler(self.learner.batch_size, config.learner.max_lag)

    def _loop(
        self, stop: StopFlag, pull: zmq.Socket, metrics: MetricsSender, max_bytes: int
    ) -> None:
        assert self.parameters is not None and self.assembler is not None
        while not stop.is_set():
            if pull.poll(POLL_MS, zmq.POLLIN):
                self._drain(pull, max_bytes)
            self.parameters.poll()
            self._learn()
            self._beat(time.monotonic(), metrics)

    def _replay_loop(self, stop: StopFlag, metrics: MetricsSender) -> None:
        """``_loop`` for a replay learner: sample, learn, send priorities; heartbeat."""
        assert self.parameters is not None and self.replay is not None
        while not stop.is_set():
            self.parameters.poll()
            if not self.parameters.ready:
                time.sleep(POLL_MS / 1000)
            elif (done := self.replay.step(POLL_MS / 1000)) is not None:
                c = self.counters
                c.learn_steps += 1
                c.transitions += done[0]
                c.learn_seconds += done[1]
            self._beat(time.monotonic(), metrics)

    def _beat(self, now: float, metrics: MetricsSender) -> None:
        """Every heartbeat interval: publish the status, report it; log it every
        ``STATS_LOG_INTERVAL``."""
        if now < self._next_beat:
            return
        self._next_beat = now + self.config.parameter_servers.heartbeat_interval
        self.published = self.stats()
        self._report(metrics)
        if now >= self._next_log:
            self._next_log = now + STATS_LOG_INTERVAL
            log.info("learner %s: %s", self.name, _summary(self.published))

    def _drain(self, pull: zmq.Socket, max_bytes: int) -> None:
        assert self.assembler is not None and self.parameters is not None
        version = self.version()
        deadline = time.monotonic() + DRAIN_SECONDS
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                message = wire.decode(frames, max_bytes)
            except ProtocolError as exc:
                self.counters.malformed += 1
                log.warning("dropped a malformed message: %s", exc)
                continue
            if not self.assembler.add(message, version) and self.assembler.last_refusal:
                log.warning("refused unrolls: %s", self.assembler.last_refusal)
                self.assembler.last_refusal = ""
            if time.monotonic() > deadline or len(self.assembler) >= 4 * self.assembler.batch_size:
                return

    def _learn(self) -> None:
        """Learn on every batch the assembler holds (the weights must be ready)."""
        assert self.assembler is not None and self.learner is not None
        assert self.parameters is not None
        if not self.parameters.ready:
            return
        while (batch := self.assembler.take(self.version())) is not None:
            started = time.monotonic()
            self.learner.learn(batch)
            c = self.counters
            c.learn_steps += 1
            c.learn_seconds += time.monotonic() - started
            c.transitions += batch.steps

    def version(self) -> int:
        """The learner's weight version: the oldest slice's (-1 before any)."""
        assert self.parameters is not None
        if not self.parameters.ready:
            return -1
        return int(self.parameters.weights()[1].min())

    def stats(self) -> dict[str, Any]:
        """The learner's status: its counters, its intake's and its learner's figures."""
        intake = dataclasses.asdict(self.assembler.counters) if self.assembler else {}
        if self.replay is not None:  # a replay learner's intake: its replay client
            intake = self.replay.stats()
        seconds = max(1e-9, time.monotonic() - self._started)
        return {
            "name": self.name,
            "version": self.version() if self.parameters is not None else -1,
            "global_step": self.parameters.global_step if self.parameters else 0,
            "uptime": seconds,
            "transitions_per_s": self.counters.transitions / seconds,
            "pending": len(self.assembler) if self.assembler else 0,
            **dataclasses.asdict(self.counters),
            "intake": intake,
            "learner": self.learner.stats() if self.learner else {},
        }

    def _report(self, metrics: MetricsSender) -> None:
        status = self.published or {}
        intake = status.get("intake", {})
        for key in ("items", "stale_items", "refused", "lag_max"):
            metrics.scalar(f"learner/{key}", float(intake.get(key, 0)))
        metrics.scalar(
            "learner/mean_lag", float(intake.get("lag_sum", 0)) / max(1, intake.get("items", 0))
        )
        metrics.scalar("learner/transitions_per_s", float(status.get("transitions_per_s", 0.0)))
        metrics.flush(int(status.get("global_step", 0)))


def use_threads(threads: int | None) -> None:
    """Give torch ``threads`` intra-op threads (``learner.torch_threads``)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _summary(status: dict[str, Any]) -> str:
    intake = status.get("intake", {})
    return (
        f"version {status.get('version')}, {status.get('learn_steps')} steps, "
        f"{status.get('transitions_per_s', 0):.0f} transitions/s, "
        f"lag mean {intake.get('lag_sum', 0) / max(1, intake.get('items', 0)):.2f} "
        f"max {intake.get('lag_max', 0)}, stale {intake.get('stale_items', 0)}, "
        f"malformed {status.get('malformed')}"
    )
