"""The worker daemon's loop: a DEALER on the broker's backend feeding a ``SessionHost``.

The worker registers (REG), heartbeats with its stats, and serves the link
(docs/exchange.md, "Link" and "Worker"): it waits for a message, then drains
every waiting one without blocking, applies control messages in arrival order
and answers all the drained requests with one agent call per group. A broker
silent for ``heartbeat_liveness`` intervals makes it drop its sessions, open a
fresh socket and register again.

An algorithm with a parameter-server side gets a ``ParameterClient`` (built
before the agent, handed to it in ``AgentContext.parameters``); the loop polls it
once per turn, so weights and heartbeats flow while the worker waits.

Metrics: once per heartbeat the worker sends its own figures (steps per second,
sessions, mean batch size, the action latency from a request's arrival to its
reply) with what the agent recorded in ``AgentContext.metrics`` (losses, gradient
norms ...), and forwards every client's METRICS. The clients'
``checkpoint.best_metric`` values (episode reward by default) also make the
worker's score, which its heartbeats to the shards carry.
"""

from __future__ import annotations

import logging
import os
import socket as socket_module
import sys
import time
from typing import Any

import zmq

from relaax_zmq.agent import Agent, AgentContext
from relaax_zmq.algorithm_loader import load_agent
from relaax_zmq.config import AppConfig
from relaax_zmq.daemon import StopFlag
from relaax_zmq.errors import ProtocolError
from relaax_zmq.link import (
    LINK_VERSION,
    Command,
    control,
    forward,
    parse_command,
    parse_control,
)
from relaax_zmq.metrics import MetricsSender, RunningMean, ScoreWindow, SessionMetricsSink, names
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, Flag, MessageType
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.sockets import open_socket, socket_map
from relaax_zmq.worker.host import Request, SessionHost

log = logging.getLogger(__name__)

#: Longest single wait, so that a stop request is noticed quickly (seconds).
POLL_CAP = 0.1
#: How long closing the socket may wait to deliver BYE (milliseconds).
BYE_LINGER_MS = 1000
#: Messages read in one drain at most, besides the max_batch bound on updates.
DRAIN_MESSAGES = 4096
#: Seconds of silence towards the broker, beyond its liveness timeout (and at least one
#: heartbeat interval), after which the worker knows it was declared dead and fences itself.
FENCE_MARGIN = 1.0


def default_name() -> str:
    """``<host>-<pid>``: a worker's name (and DEALER identity) when none is given."""
    return f"{socket_module.gethostname()}-{os.getpid()}"


class Worker:
    """One worker: hosts blocks of sessions for the broker at ``broker.backend``.

    Args:
        config: the app config (broker endpoints and liveness, workers, algorithm, protocol).
        name: unique worker name and socket identity (default ``<host>-<pid>``).
        inproc: connect over ``inproc://`` (components as threads of one process; needs
            ``context`` shared with the broker).
        context: ZeroMQ context to use; default: a private one, terminated by ``run``.
        agent: an agent to host instead of loading ``config.algorithm`` (tests).
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        name: str | None = None,
        inproc: bool = False,
        context: zmq.Context | None = None,
        agent: Agent | None = None,
    ) -> None:
        self.config = config
        self.name = name or default_name()
        self.spec = socket_map(config, inproc=inproc)["worker.backend"]
        self.inproc = inproc
        self.parameters: ParameterClient | None = None
        #: the worker's metrics sender (client metrics and its own figures), while it runs
        self.metrics: MetricsSender | None = None
        #: the clients' recent ``checkpoint.best_metric`` values
        self.score = ScoreWindow(config.parameter_servers.checkpoint.best_metric)
        self._latency = RunningMean()
        self._client_metrics: SessionMetricsSink | None = None
        self._metered = (time.monotonic(), 0, 0)
        self.limits = config.protocol.limits()
        self.host: SessionHost | None = None
        self.counters = dict.fromkeys(
            ("reconnects", "malformed", "dropped_replies", "ignored", "fenced", "fenced_requests"),
            0,
        )
        self._agent = agent
        self._context = context
        self._socket: zmq.Socket | None = None
        self._pending: list[Request] = []
        self._received: list[float] = []  # arrival time of each pending request
        self._pending_blocks: set[int] = set()
        self._pending_sessions = 0
        self._last_sent = 0.0  # when the last message to the broker went out (monotonic)
        self._longest_mute = 0.0  # the longest time between two of them since registering

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set; then send BYE, close the agent and the socket."""
        own_context = self._context is None
        context = zmq.Context() if own_context else self._context
        assert context is not None
        self.metrics = MetricsSender.from_config(
            self.config, f"worker-{self.name}", context=context
        )
        try:
            agent = self._agent if self._agent is not None else self._load_agent(context)
        except BaseException:
            self._close_parameters()
            self.metrics.close()
            self.metrics = None
            if own_context:
                context.term()
            raise
        self._set_torch_threads()
        self._client_metrics = SessionMetricsSink(self.metrics)
        self.host = SessionHost(
            agent,
            self.limits,
            max_batch=self.config.workers.max_batch,
            metrics_sink=self._on_client_metrics,
        )
        try:
            self._connect(context)
            self._loop(stop, context)
        finally:
            self._shutdown(agent)
            if own_context:
                context.term()

    def _load_agent(self, zmq_context: zmq.Context) -> Agent:
        c = self.config
        spec = load_spec(c)
        if spec is not None:
            self.parameters = ParameterClient(
                c,
                spec.param_count,
                self.name,
                context=zmq_context,
                allow_mixed_versions=spec.allow_mixed_versions,
                statistics_size=spec.statistics_size,
                inproc=self.inproc,
            )
        context = AgentContext(
            config=c.algorithm.config,
            worker_id=self.name,
            device=c.workers.device,
            seed=c.environment.seed,
            max_batch=c.workers.max_batch,
            parameters=self.parameters,
            metrics=self.metrics,
        )
        return load_agent(c.algorithm, context)

    def _close_parameters(self) -> None:
        parameters, self.parameters = self.parameters, None
        if parameters is not None:
            parameters.close()

    def _set_torch_threads(self) -> None:
        threads = self.config.workers.torch_threads
        torch = sys.modules.get("torch")
        if threads is not None and torch is not None:
            torch.set_num_threads(threads)

    def _connect(self, context: zmq.Context) -> None:
        self._socket = open_socket(context, self.spec, identity=self.name.encode())
        self._last_sent, self._longest_mute = time.monotonic(), 0.0  # a new registration
        self._send(
            control(
                Command.REGISTER,
                worker=self.name,
                pid=os.getpid(),
                capacity=self.config.workers.max_sessions,
                link_version=LINK_VERSION,
            )
        )
        log.info("worker %s registering at %s", self.name, self.spec.endpoint)

    def _reconnect(self, context: zmq.Context) -> None:
        assert self._socket is not None and self.host is not None
        self._socket.close(linger=0)
        self._socket = None
        self._clear_pending()
        self.host.release_all()
        self.counters["reconnects"] += 1
        self._connect(context)

    def _on_client_metrics(
        self, session_id: int, scalars: dict[str, float], histograms: dict[str, Any]
    ) -> None:
        self.score.observe(scalars)
        if self._client_metrics is not None:
            self._client_metrics(session_id, scalars, histograms)

    def _report_metrics(self, now: float) -> None:
        """The worker's own figures (and the agent's) to the metrics collector, per heartbeat."""
        if self.metrics is None or self.host is None:
            return
        m = self.metrics
        since, steps_then, batches_then = self._metered
        steps, batches = int(self.host.counters["steps"]), int(self.host.counters["batches"])
        self._metered = (now, steps, batches)
        if now > since:
            m.scalar(names.STEPS_PER_SECOND, (steps - steps_then) / (now - since))
        if batches > batches_then:
            m.scalar(names.BATCH_SIZE, (steps - steps_then) / (batches - batches_then))
        m.scalar(names.SESSIONS, self.host.sessions)
        latency = self._latency.take()
        if latency is not None:
            m.scalar(names.ACTION_LATENCY_SERVER_MS, latency * 1000.0)
        step = steps
        if self.parameters is not None:
            self.parameters.score = self.score.mean
            step = self.parameters.global_step
        m.flush(step)

    def _shutdown(self, agent: Agent) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.send_multipart(control(Command.BYE), zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                log.warning("could not send BYE: %s", exc)
        try:
            agent.close()
        except Exception:
            log.exception("agent.close failed")
        self._close_parameters()
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if sock is not None:
            sock.close(linger=BYE_LINGER_MS)
        log.info("worker %s stopped", self.name)

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self, stop: StopFlag, context: zmq.Context) -> None:
        interval = self.config.broker.heartbeat_interval
        silence = interval * self.config.broker.heartbeat_liveness
        # mute this long, the broker has surely declared this worker dead (``_fence``)
        dead = silence + max(interval, FENCE_MARGIN)
        now = time.monotonic()
        next_beat, last_heard = now + interval, now
        while not stop.is_set():
            assert self._socket is not None
            wait = max(0.0, min(next_beat - now, POLL_CAP))
            if self._socket.poll(int(wait * 1000), zmq.POLLIN) and self._mute() <= dead:
                last_heard = time.monotonic()
                self._drain()
            if self.parameters is not None:
                self.parameters.poll()
            now = time.monotonic()
            if self._mute() > dead:
                self._fence(context, self._mute())
                now = last_heard = time.monotonic()
                next_beat = now + interval
                continue
            if now >= next_beat:
                self._send(control(Command.HEARTBEAT, **self.stats()))
                self._report_metrics(now)
                next_beat = now + interval
            if now - last_heard > silence:
                log.warning(
                    "broker silent for %.1f s: reconnecting and registering again",
                    now - last_heard,
                )
                self._reconnect(context)
                last_heard = now

    def _mute(self) -> float:
        """The longest time nothing went out to the broker, since the last registration."""
        return max(self._longest_mute, time.monotonic() - self._last_sent)

    def _fence(self, context: zmq.Context, mute: float) -> None:
        """Nothing went out to the broker for ``mute`` s (the process was stopped or starved,
        or one agent call took that long): longer than the broker's liveness timeout and a
        margin, so the broker has declared this worker dead and given its blocks to other
        workers (and drops what this registration still sends). The requests queued meanwhile
        are dropped unanswered (their clients are served elsewhere), and the worker registers
        again at once, with a fresh socket and no sessions."""
        assert self._socket is not None
        dropped = 0
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            dropped += bytes(frames[0]) == Command.REQUEST.value
        self.counters["fenced"] += 1
        self.counters["fenced_requests"] += dropped
        log.warning(
            "nothing sent for %.1f s: the broker has declared this worker dead; dropping %d "
            "queued requests unanswered and its sessions, and registering again",
            mute,
            dropped,
        )
        self._reconnect(context)

    def _drain(self) -> None:
        """Read every waiting message (bounded), then answer the requests read."""
        assert self._socket is not None
        workers = self.config.workers
        deadline: float | None = None
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                if not self._pending_sessions or workers.max_batch_wait_ms <= 0:
                    break
                if deadline is None:
                    deadline = time.monotonic() + workers.max_batch_wait_ms / 1000
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._socket.poll(max(1, int(remaining * 1000))):
                    break
                continue
            self._on_message(frames, time.perf_counter())
            if self._pending_sessions >= workers.max_batch:
                break
        self._flush()

    def _on_message(self, frames: list[Any], received: float) -> None:
        try:
            command = parse_command(frames[0])
        except ProtocolError as exc:
            self._ignore("a link message", exc)
            return
        if command is Command.REQUEST:
            self._on_request(frames, received)
        elif command is Command.HEARTBEAT:
            pass  # any message is a sign of life; the broker's HB carries nothing else
        elif command in (Command.ASSIGN, Command.RESTART, Command.RELEASE):
            if len(frames) != 2:
                self._ignore(command.name, f"expected 2 frames, got {len(frames)}")
                return
            try:
                body = parse_control(command, frames[1])
            except ProtocolError as exc:
                self._ignore(command.name, exc)
                return
            self._on_control(command, body)
        else:
            self._ignore(command.name, "not a broker -> worker command")

    def _on_request(self, frames: list[Any], received: float) -> None:
        if len(frames) < 2:
            self._ignore("REQ", "no client identity frame")
            return
        identity, rlx = bytes(frames[1]), frames[2:]
        try:
            message = decode(rlx, self.limits)
        except ProtocolError as exc:
            self.counters["malformed"] += 1
            log.debug("malformed request: %s", exc)
            self._reply(identity, refusal(exc, rlx, self.limits))
            return
        self._pending.append(Request(identity, message))
        self._received.append(received)
        self._pending_blocks.add(message.session_id)
        if message.type == MessageType.UPDATE:
            self._pending_sessions += message.session_count

    def _on_control(self, command: Command, body: dict[str, Any]) -> None:
        assert self.host is not None
        session_id = body["session_id"]
        if session_id in self._pending_blocks:
            self._flush()
        try:
            if command is Command.ASSIGN:
                self.host.assign(
                    session_id, body["count"], exploit=body["exploit"], restart=body["restart"]
                )
            elif command is Command.RESTART:
                if not self.host.restart(session_id):
                    log.info("RESTART of block %d, which is not hosted here", session_id)
            elif not self.host.release(session_id):
                log.info("RELEASE of block %d, which is not hosted here", session_id)
        except Exception:
            log.exception("%s %s failed", command.name, body)

    def _flush(self) -> None:
        if not self._pending:
            return
        assert self.host is not None
        requests, received = self._pending, self._received
        self._clear_pending()
        for identity, reply in self.host.handle(requests):
            self._reply(identity, reply)
        done = time.perf_counter()
        self._latency.extend(done - t for t in received)

    def _clear_pending(self) -> None:
        self._pending = []
        self._received = []
        self._pending_blocks = set()
        self._pending_sessions = 0

    # -- sending ------------------------------------------------------------------------------

    def _reply(self, identity: bytes, message: Message) -> None:
        try:
            frames = encode(message, self.limits)
        except Exception as exc:  # an agent's action the wire cannot carry
            log.error("cannot encode the reply %r: %s", message, exc)
            fallback = messages.error(
                ErrorCode.INTERNAL,
                f"the worker could not encode its reply: {exc}",
                sequence=message.sequence,
                session_id=message.session_id,
                session_count=message.session_count,
                restart=bool(message.flags & Flag.RESTART),
            )
            frames = encode(fallback, self.limits)
        self._send(forward(Command.REPLY, identity, frames))

    def _send(self, frames: list[Any]) -> None:
        assert self._socket is not None
        now = time.monotonic()  # a sign of life to the broker (see ``_fence``)
        if now - self._last_sent > self._longest_mute:
            self._longest_mute = now - self._last_sent
        self._last_sent = now
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.counters["dropped_replies"] += 1
            log.warning("send queue to the broker is full: dropped a %r message", frames[0])

    def _ignore(self, what: str, why: object) -> None:
        self.counters["ignored"] += 1
        log.warning("ignored %s from the broker: %s", what, why)

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What the worker's heartbeats carry: the host's stats and the link counters."""
        host = self.host.stats() if self.host is not None else {}
        if self.parameters is not None:
            host["parameters"] = self.parameters.stats()
        return {**host, **self.counters}
