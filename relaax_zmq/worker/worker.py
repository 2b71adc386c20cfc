"""The worker daemon: its wiring (``Worker.run``) and its thin socket loop.

Three socket-free parts do the work: the ``SessionHost`` (blocks and agent), the ``Batcher``
(the requests of one drain) and the ``LinkClock`` (when to heartbeat, register again or fence;
``broker_link``). The loop here owns the DEALER on the broker's backend (docs/exchange.md,
"Link" and "Worker"): it registers (REG), waits for a message, then drains every waiting one
without blocking, applies control messages in arrival order and answers the drained requests
with one agent call per group; it does what the clock says is due.

An algorithm with a parameter-server side gets a ``ParameterClient`` (built
before the agent, handed to it in ``AgentContext.parameters``); the loop polls it
once per turn, so weights and heartbeats flow while the worker waits.

Metrics: once per heartbeat the worker sends its own figures with what the agent recorded in
``AgentContext.metrics``, and forwards every client's METRICS (``WorkerReport``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict
from typing import Any

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core import Agent
from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner.sink import ExperienceLink
from relaax_zmq.metrics import MetricsSender
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, Flag
from relaax_zmq.protocol.link import Command, control, forward, parse_command
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.identity import cluster_name, instance_token
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.worker.batcher import Batcher
from relaax_zmq.worker.broker_link import (
    Due,
    LinkClock,
    LinkCounters,
    Refusals,
    apply_control,
    read_control,
    registration,
)
from relaax_zmq.worker.host import SessionHost
from relaax_zmq.worker.report import WorkerReport
from relaax_zmq.worker.wiring import build_agent

log = logging.getLogger(__name__)

#: How long closing the socket may wait to deliver BYE (milliseconds).
BYE_LINGER_MS = 1000
#: Messages read in one drain at most, besides the max_batch bound on updates.
DRAIN_MESSAGES = 4096

_REQUEST = Command.REQUEST.value


def default_name() -> str:
    """``worker-<pid>@<host>``: a worker's name when none is given."""
    return cluster_name(f"worker-{os.getpid()}")


class Worker:
    """One worker: hosts blocks of sessions for the broker at ``broker.backend``.

    Args:
        config: the app config (broker endpoints and liveness, workers, algorithm, protocol).
        name: the worker's cluster-unique name (default ``worker-<pid>@<host>``); its socket
            identity is ``<name>#<instance>``, the instance a token drawn for this process.
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
        #: this process's token: tells this worker from another that claims the same name
        self.instance = instance_token()
        self.spec = socket_map(config, inproc=inproc)["worker.backend"]
        self.inproc = inproc
        self.parameters: ParameterClient | None = None
        self.experience: ExperienceLink | None = None  # an actor's link to learners or replay
        #: the worker's metrics sender (client metrics and its own figures), while it runs
        self.metrics: MetricsSender | None = None
        self.report: WorkerReport | None = None
        self.limits = config.protocol.limits()
        self.host: SessionHost | None = None
        self.counters = LinkCounters()
        broker = config.broker
        self._clock = LinkClock(broker.heartbeat_interval, broker.heartbeat_liveness, 0.0)
        self._refusals = Refusals(self._clock.silence / 2)
        self.published: dict[str, Any] | None = None  #: the last heartbeat's stats (/metrics)
        self._batcher: Batcher | None = None
        self._agent = agent
        self._context = context
        self._socket: zmq.Socket | None = None

    # -- wiring -------------------------------------------------------------------------------

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
        use_torch_threads(self.config.workers.torch_threads)
        best_metric = self.config.parameter_servers.checkpoint.best_metric
        self.report = WorkerReport(self.metrics, best_metric, time.monotonic())
        workers = self.config.workers
        self.host = SessionHost(
            agent, self.limits, max_batch=workers.max_batch, metrics_sink=self.report.client_metrics
        )
        self._batcher = Batcher(self.host, workers.max_batch)
        try:
            self._connect(context)
            self._loop(stop, context)
        finally:
            self._shutdown(agent)
            if own_context:
                context.term()

    def _load_agent(self, zmq_context: zmq.Context) -> Agent:
        parts = build_agent(self.config, self.name, zmq_context, self.metrics, inproc=self.inproc)
        self.parameters, self.experience = parts.parameters, parts.experience
        return parts.agent

    def _close_parameters(self) -> None:
        parameters, self.parameters = self.parameters, None
        if parameters is not None:
            parameters.close()
        experience, self.experience = self.experience, None
        if experience is not None:
            experience.close()

    def _shutdown(self, agent: Agent) -> None:
        sock, self._socket = self._socket, None
        if sock is not None and self._refusals.first is None:  # a refused worker has no BYE
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

    # -- the link -----------------------------------------------------------------------------

    def _connect(self, context: zmq.Context) -> None:
        identity = f"{self.name}#{self.instance}".encode()
        self._socket = open_socket(context, self.spec, identity=identity)
        self._clock.registered(time.monotonic())
        self._tell(registration(self.name, self.instance, self.config.workers.max_sessions))
        log.info("worker %s registering at %s", self.name, self.spec.endpoint)

    def _reconnect(self, context: zmq.Context) -> None:
        assert self._socket is not None and self.host is not None and self._batcher is not None
        self._socket.close(linger=0)
        self._socket = None
        self._batcher.clear()
        self.host.release_all()
        self.counters.reconnects += 1
        self._connect(context)

    def _loop(self, stop: StopFlag, context: zmq.Context) -> None:
        clock = self._clock
        now = time.monotonic()
        while not stop.is_set():
            assert self._socket is not None
            if self._socket.poll(int(clock.wait(now) * 1000), zmq.POLLIN):
                heard = time.monotonic()
                if not clock.declared_dead(heard):
                    clock.heard(heard)
                    self._drain()
            if self.parameters is not None:
                self.parameters.poll()
            now = time.monotonic()
            due = clock.due(now)
            if due & Due.FENCE:
                self._fence(context, clock.mute(now))
                now = time.monotonic()
                continue
            if due & Due.HEARTBEAT and self._refusals.first is None:
                self.published = self.stats()
                self._tell(control(Command.HEARTBEAT, **self.published))
                self._report(now)
            if due & Due.RECONNECT:
                log.warning(
                    "broker silent for %.1f s: reconnecting and registering again",
                    now - clock.last_heard,
                )
                self._reconnect(context)

    def _fence(self, context: zmq.Context, mute: float) -> None:
        """Nothing went out to the broker for ``mute`` s (the process was stopped or starved,
        or one agent call took that long): the broker has declared this worker dead and given
        its blocks to other workers (and drops what this registration still sends). The
        requests queued meanwhile are dropped unanswered (their clients are served elsewhere),
        and the worker registers again at once, with a fresh socket and no sessions."""
        assert self._socket is not None
        dropped = 0
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            dropped += bytes(frames[0]) == _REQUEST
        self.counters.fenced += 1
        self.counters.fenced_requests += dropped
        log.warning(
            "nothing sent for %.1f s: the broker has declared this worker dead; dropping %d "
            "queued requests unanswered and its sessions, and registering again",
            mute,
            dropped,
        )
        self._reconnect(context)

    # -- a drain ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Read every waiting message (bounded), then answer the requests read."""
        assert self._socket is not None and self._batcher is not None
        sock, batcher = self._socket, self._batcher
        wait_ms = self.config.workers.max_batch_wait_ms
        deadline: float | None = None
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                if not batcher.sessions or wait_ms <= 0:
                    break
                if deadline is None:
                    deadline = time.monotonic() + wait_ms / 1000
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sock.poll(max(1, int(remaining * 1000))):
                    break
                continue
            if self._on_message(frames, time.perf_counter()):
                break
        self._flush()

    def _on_message(self, frames: list[Any], received: float) -> bool:
        """One link message of a drain; True when the batch is full."""
        head = bytes(frames[0])
        if head == _REQUEST:
            return self._on_request(frames, received)
        try:
            command = parse_command(head)
        except ProtocolError as exc:
            self._ignore("a link message", exc)
            return False
        if command is Command.HEARTBEAT:
            self._refusals.accepted()  # the broker heartbeats registered workers only
            return False  # any message is a sign of life; the broker's HB carries nothing else
        try:
            body = read_control(command, frames)
        except ProtocolError as exc:
            self._ignore(command.name, exc)
            return False
        if command is Command.REFUSE:
            self.counters.refused += 1
            self._refusals.refused(body["reason"], time.monotonic())  # WorkerRefused: stop
            return False
        self._refusals.accepted()
        assert self._batcher is not None and self.host is not None
        if self._batcher.holds(body["session_id"]):
            self._flush()
        apply_control(self.host, command, body)
        return False

    def _on_request(self, frames: list[Any], received: float) -> bool:
        if len(frames) < 2:
            self._ignore("REQ", "no client identity frame")
            return False
        identity, rlx = bytes(frames[1]), frames[2:]
        try:
            message = decode(rlx, self.limits)
        except ProtocolError as exc:
            self.counters.malformed += 1
            log.debug("malformed request: %s", exc)
            self._reply(identity, refusal(exc, rlx, self.limits))
            self._clock.sent(time.monotonic())
            return False
        assert self._batcher is not None
        return self._batcher.add(identity, message, received)

    def _flush(self) -> None:
        assert self._batcher is not None
        if self._batcher.flush(self._reply):
            self._clock.sent(time.monotonic())

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

    def _tell(self, frames: list[Any]) -> None:
        """Send a control message (a sign of life to the broker)."""
        self._send(frames)
        self._clock.sent(time.monotonic())

    def _send(self, frames: list[Any]) -> None:
        assert self._socket is not None
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.counters.dropped_replies += 1
            log.warning("send queue to the broker is full: dropped a %r message", frames[0])

    def _report(self, now: float) -> None:
        if self.report is not None and self.metrics is not None and self.host is not None:
            assert self._batcher is not None
            latency = self._batcher.latency.take()
            self.report.heartbeat(now, self.host, latency, self.parameters)

    def _ignore(self, what: str, why: object) -> None:
        self.counters.ignored += 1
        log.warning("ignored %s from the broker: %s", what, why)

    # -- status -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What the worker's heartbeats carry: the host's stats and the link counters."""
        host = self.host.stats() if self.host is not None else {}
        if self.parameters is not None:
            host["parameters"] = self.parameters.stats()
        if self.experience is not None:
            host["experience"] = self.experience.stats()
        return {**host, **asdict(self.counters)}


def use_torch_threads(threads: int | None) -> None:
    """Give torch ``threads`` intra-op threads (``workers.torch_threads``) when the algorithm
    imported it; None leaves torch's default. A worker and serial mode both call it."""
    torch = sys.modules.get("torch")
    if threads is not None and torch is not None:
        torch.set_num_threads(threads)
