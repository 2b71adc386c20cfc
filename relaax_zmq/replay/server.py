"""The replay server daemon (Ape-X): a PULL of the actors' transitions, a ROUTER for the
learners' samples and priorities, and a ``ReplayCore`` (``server_core.py``: the table,
the limiter and the rules of the messages) behind them.

Sockets (``runtime.sockets``): ``replay[i].insert`` (PULL, bound) takes "transitions"
messages from the actors' PUSH, each field (N, ...) and a ``priority`` field (N,);
``replay[i].sample`` (ROUTER, bound) takes "sample" requests (meta ``batch_size``,
``beta``, ``request``) and "priorities" (fields ``key`` int64, ``priority``) from the
learners' DEALERs. A malformed message (``wire.decode`` raises ``ProtocolError``) or one
of another schema is counted and dropped: the daemon never dies of a peer.

- Samples: a request is answered with a "batch" (its meta echoes ``request``) when the
  limiter allows it, else held, and answered as soon as inserts make it allowed; one held
  longer than ``HOLD_SECONDS`` gets a "refused" reply whose meta ``reason`` indexes
  ``REFUSALS`` (the learner asks again).
- Backpressure: while the limiter refuses inserts the server stops reading the PULL; its
  pipes (``RECEIVE_HWM`` messages), the kernel's socket buffers (a few MiB over TCP:
  ~900 messages of 64 CartPole transitions on Linux loopback) and the actors' queues
  (``replay.queue_mib``) fill, then the actors' ``send`` blocks (at most
  ``replay.send_timeout``, then drops): the sampling pace slows the actors, with that
  much slack. Held requests open the PULL again: the limiter never blocks both sides.
- Memory: bounded by ``replay.capacity`` (the status's ``nbytes``, fixed after the first
  insert) and the queues above.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import ConfigError, ProtocolError
from relaax_zmq.learner import wire
from relaax_zmq.learner.wire import TensorMessage
from relaax_zmq.metrics import MetricsSender
from relaax_zmq.replay.limiter import RateLimiter
from relaax_zmq.replay.server_core import (
    BAD_REQUEST,
    BUSY,
    REFUSALS,
    ReplayCore,
    ReplayCounters,
    parse_request,
)
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.identity import cluster_name
from relaax_zmq.runtime.sockets import open_socket, socket_map

log = logging.getLogger(__name__)

#: Seconds a sample request waits for the limiter before it is refused.
HOLD_SECONDS = 2.0
#: Requests held at most (beyond: refused at once).
MAX_HELD = 256
#: Messages one drain reads at most; longest single wait (a stop is noticed this fast).
DRAIN_MESSAGES = 64
POLL_MS = 50
#: Messages each actor's pipe queues at the server's end.
RECEIVE_HWM = 8
#: Seconds between the server's INFO log lines.
STATS_LOG_INTERVAL = 10.0


@dataclass
class _Held:
    peer: bytes
    request: float
    batch_size: int
    beta: float
    arrived: float


class ReplayServer:
    """Replay server ``shard`` of ``config.replay`` (see the module docstring).

    Args:
        config: the app config (``replay``, ``metrics``).
        shard: this server's number (its endpoints are the first ones + shard).
        context: ZeroMQ context; default a private one, terminated by ``run``.
        inproc: bind over ``inproc://``.
    """

    def __init__(
        self,
        config: AppConfig,
        shard: int = 0,
        *,
        context: zmq.Context | None = None,
        inproc: bool = False,
    ) -> None:
        replay = config.replay
        if not 0 <= shard < replay.shards:
            raise ValueError(f"--shard: expected 0..{replay.shards - 1}, got {shard}")
        if replay.capacity < replay.min_size_to_sample:
            raise ConfigError(
                "replay.min_size_to_sample",
                f"expected at most replay.capacity ({replay.capacity}), got {replay.min_size_to_sample}",
            )
        limiter = RateLimiter(replay.samples_per_insert, replay.min_size_to_sample, replay.buffer)
        seed = (config.environment.seed or 0) * 1009 + shard
        self.core = ReplayCore(replay.capacity, replay.alpha, limiter, seed=seed)
        self.config = config
        self.shard = shard
        self.name = cluster_name(f"replay-{shard}")
        self.inproc = inproc
        self.held: deque[_Held] = deque()
        self.published: dict[str, float] | None = None  #: the last heartbeat's status
        self._context = context
        self._started = time.monotonic()
        self._insert_open = True
        self._changed = False  # inserts or requests since the held ones were last judged

    def run(self, stop: StopFlag) -> None:
        """Serve until ``stop`` is set; then close everything."""
        own = self._context is None
        context = zmq.Context() if own else self._context
        assert context is not None
        metrics = MetricsSender.from_config(self.config, self.name, context=context)
        specs = socket_map(self.config, inproc=self.inproc)
        insert_spec = dataclasses.replace(specs[f"replay[{self.shard}].insert"], hwm=RECEIVE_HWM)
        sample_spec = specs[f"replay[{self.shard}].sample"]
        sockets: list[zmq.Socket] = []
        try:
            pull = open_socket(context, insert_spec)
            sockets.append(pull)
            router = open_socket(context, sample_spec)
            sockets.append(router)
            log.info("replay %s: inserts at %s, samples at %s", self.name, insert_spec.endpoint, sample_spec.endpoint)  # fmt: skip
            self._loop(stop, pull, router, metrics, insert_spec.max_message_bytes)
        finally:
            for sock in sockets:
                sock.close(linger=0)
            metrics.close()
            if own:
                context.term()
            log.info("replay %s stopped", self.name)

    def _loop(
        self,
        stop: StopFlag,
        pull: zmq.Socket,
        router: zmq.Socket,
        metrics: MetricsSender,
        max_bytes: int,
    ) -> None:
        both, requests_only = zmq.Poller(), zmq.Poller()
        both.register(pull, zmq.POLLIN)
        both.register(router, zmq.POLLIN)
        requests_only.register(router, zmq.POLLIN)
        interval = self.config.parameter_servers.heartbeat_interval
        next_beat = next_log = time.monotonic()
        while not stop.is_set():
            ready = dict((both if self._insert_open else requests_only).poll(POLL_MS))
            if router in ready:
                self._requests(router, max_bytes)
            if pull in ready:
                self._inserts(pull, max_bytes)
            self._serve(router, time.monotonic())
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + interval
                self.published = self.stats()
                self._report(metrics)
                if now >= next_log:
                    next_log = now + STATS_LOG_INTERVAL
                    log.info("replay %s: %s", self.name, _summary(self.published))

    def _inserts(self, pull: zmq.Socket, max_bytes: int) -> None:
        for _ in range(DRAIN_MESSAGES):
            if not self._insert_open:
                return
            try:
                frames = pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                message = wire.decode(frames, max_bytes)
                if message.kind != "transitions":
                    raise ProtocolError("kind", "transitions", message.kind)
                why = self.core.insert(message)  # counts its own refusals
                self._changed = True
            except ProtocolError as exc:
                self.core.counters.malformed += 1
                why = str(exc)
            if why:
                _warn(self.core.counters, "insert dropped: %s", why)
            self._insert_open = self.core.can_insert() or bool(self.held)

    def _requests(self, router: zmq.Socket, max_bytes: int) -> None:
        now = time.monotonic()
        for _ in range(DRAIN_MESSAGES):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            peer = bytes(frames[0].buffer)
            try:
                message = wire.decode(frames[1:], max_bytes)
            except ProtocolError as exc:
                self.core.counters.malformed += 1
                _warn(self.core.counters, "request dropped: %s", exc)
                continue
            if message.kind == "priorities":
                why = self.core.update_priorities(message)
                if why:
                    _warn(self.core.counters, "priorities dropped: %s", why)
            elif message.kind == "sample":
                self._request(router, peer, message, now)
            else:
                self.core.counters.malformed += 1
                _warn(self.core.counters, "dropped a %s message: expected sample or priorities", message.kind)  # fmt: skip

    def _request(self, router: zmq.Socket, peer: bytes, message: TensorMessage, now: float) -> None:
        self.core.counters.requests += 1
        request = message.meta.get("request", 0.0)
        try:
            n, beta = parse_request(message)
        except ProtocolError as exc:
            _warn(self.core.counters, "sample request refused: %s", exc)
            return self._refuse(router, peer, request, BAD_REQUEST)
        if len(self.held) >= MAX_HELD:
            return self._refuse(router, peer, request, BUSY)
        self.held.append(_Held(peer, request, n, beta, now))
        self._changed = True

    def _serve(self, router: zmq.Socket, now: float) -> None:
        """Answer the held requests the limiter allows (in order) when inserts or requests
        came since the last try (the limiter's counts of refusals stay one per try);
        refuse the expired."""
        core = self.core
        sampled = False
        while self._changed and self.held and core.can_sample(self.held[0].batch_size):
            held = self.held.popleft()
            meta = {"request": held.request, "size": len(core.table or ())}
            self._send(router, held.peer, core.sample(held.batch_size, held.beta, meta, self.name))
            sampled = True
        self._changed = False
        while self.held and now - self.held[0].arrived > HOLD_SECONDS:
            held = self.held.popleft()
            self._refuse(router, held.peer, held.request, core.waiting_for())
        if sampled or (self.held and not self._insert_open):
            self._insert_open = core.can_insert() or bool(self.held)

    def _refuse(self, router: zmq.Socket, peer: bytes, request: float, reason: int) -> None:
        core = self.core
        core.counters.refused_requests += 1
        meta = {
            "request": request,
            "reason": reason,
            "size": len(core.table or ()),
            "min_size": core.limiter.min_size_to_sample,
            "ratio": core.limiter.ratio,
        }
        self._send(router, peer, TensorMessage("refused", {}, self.name, meta=meta))

    def _send(self, router: zmq.Socket, peer: bytes, message: TensorMessage) -> None:
        try:
            router.send_multipart([peer, *wire.encode(message)], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:  # EHOSTUNREACH (gone) or EAGAIN (not reading): its request is lost
            self.core.counters.unroutable += 1

    def stats(self) -> dict[str, float]:
        """The server's status: a flat dict of numbers (module docstring)."""
        return {
            **self.core.stats(),
            "held": len(self.held),
            "uptime": time.monotonic() - self._started,
        }

    def _report(self, metrics: MetricsSender) -> None:
        status = self.published or {}
        for key in ("size", "inserted", "sampled", "samples_per_insert", "held", "blocked_inserts"):
            metrics.scalar(f"replay/{key}", float(status.get(key, 0)))
        metrics.flush(int(status.get("inserted", 0)))


def _warn(counters: ReplayCounters, text: str, *args: Any) -> None:
    """Log a peer's fault, fewer as they repeat (the 1st, 10th, 100th, every 1000th)."""
    count = counters.malformed + counters.refused_schema
    if count <= 1 or count in (10, 100) or count % 1000 == 0:
        log.warning(text, *args)


def _summary(status: dict[str, float]) -> str:
    return (
        f"size {status['size']}/{status['capacity']}, inserted {status['inserted']}, "
        f"sampled {status['sampled']} (ratio {status['samples_per_insert']:.2f}), "
        f"held {status['held']}, blocked inserts {status['blocked_inserts']}, "
        f"malformed {status['malformed']}, refused schema {status['refused_schema']}, "
        f"stale keys {status['stale_priority_keys']}"
    )


__all__ = ["REFUSALS", "ReplayServer"]
