"""``ReplayClient``: a learner's DEALERs to every replay server (Ape-X).

It keeps up to ``in_flight`` sample requests outstanding at each server (pipelining: the
next batch is drawn while the learner works on this one), hands out the first batch
that arrives (``sample``) and sends each batch's new priorities back to the server it
came from (``update_priorities``).

A server that restarts loses the requests it held: a request unanswered after
``request_timeout`` seconds (longer than a server holds one, ``server.HOLD_SECONDS``)
is given up and asked again; ZeroMQ reconnects the DEALER by itself. A batch from
before the restart is still learned on; its priorities reach the new server, which
skips the keys it does not hold. A "refused" reply (minimum size not reached, the ratio
waiting for inserts) is counted and asked again after ``REFUSAL_BACKOFF``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core_learner import ExperienceBatch
from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner import wire
from relaax_zmq.learner.wire import TensorMessage
from relaax_zmq.replay.server_core import REFUSALS
from relaax_zmq.runtime.sockets import open_socket, socket_map

log = logging.getLogger(__name__)

#: Seconds before an unanswered request is asked again (a server holds one 2 s at most).
REQUEST_TIMEOUT = 5.0
#: Seconds a server that refused is left alone before it is asked again.
REFUSAL_BACKOFF = 0.05
#: Longest single wait inside ``sample`` (requests are topped up this often).
POLL_SLICE = 0.05
#: Batches whose server is remembered for ``update_priorities`` (the newest).
MAX_ORIGINS = 64


@dataclass
class ReplayClientCounters:
    """What a learner's replay client counts (its status's ``intake``)."""

    requests: int = 0  # sample requests sent
    batches: int = 0  # batches received
    items: int = 0  # items in them
    refused: int = 0  # "refused" replies
    timeouts: int = 0  # requests given up after request_timeout
    malformed: int = 0  # replies the decoder or the checks refused
    priority_messages: int = 0  # priorities sent
    priorities_dropped: int = 0  # not sent: server queue full, or batch unknown


def batch_from_message(message: TensorMessage) -> ExperienceBatch:
    """The learner's batch of a "batch" reply: the table's fields, its items' ``keys`` and
    importance ``weights``, the environment steps and episodes it carries (versions 0)."""
    fields = dict(message.fields)
    keys, weights = fields.pop("key", None), fields.pop("weight", None)
    fields.pop("probability", None)
    if keys is None or weights is None or not fields:
        raise ProtocolError(
            "batch fields", "the table's fields, key and weight", sorted(message.fields)
        )
    n = keys.shape[0]
    if keys.shape != (n,) or keys.dtype != np.int64 or weights.shape != (n,):
        raise ProtocolError(
            "batch key, weight",
            "(N,) int64 and (N,)",
            f"{keys.dtype}{list(keys.shape)}, {list(weights.shape)}",
        )
    if any(a.ndim < 1 or a.shape[0] != n for a in fields.values()):
        raise ProtocolError(
            "batch fields", f"{n} items each", {k: list(a.shape) for k, a in fields.items()}
        )
    return ExperienceBatch(
        fields=fields,
        versions=np.zeros(n, np.int64),
        steps=message.steps,
        episodes=message.episodes,
        keys=keys,
        weights=weights.astype(np.float32, copy=False),
    )


class ReplayClient:
    """Sample requests to every replay server, batches back (see the module docstring).

    Args:
        config: the app config (``replay``).
        context: ZeroMQ context (the learner's).
        batch_size: items per sample request.
        beta: importance-weight exponent of the requests, in [0, 1].
        source: the learner's name in each message's header.
        inproc: connect over ``inproc://``.
        in_flight: requests kept outstanding per server.
        request_timeout: seconds before an unanswered request is asked again.
    """

    def __init__(
        self,
        config: AppConfig,
        context: zmq.Context,
        *,
        batch_size: int,
        beta: float = 1.0,
        source: str = "learner",
        inproc: bool = False,
        in_flight: int = 2,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        if batch_size < 1 or not 0.0 <= beta <= 1.0 or in_flight < 1:
            raise ValueError(
                f"batch_size, beta, in_flight: expected >= 1, [0, 1], >= 1, got {batch_size}, {beta}, {in_flight}"
            )
        specs = socket_map(config, inproc=inproc)
        count = config.replay.shards
        self.specs = [specs[f"learner.replay[{i}]"] for i in range(count)]
        self.sockets = [open_socket(context, spec) for spec in self.specs]
        self.poller = zmq.Poller()
        for sock in self.sockets:
            self.poller.register(sock, zmq.POLLIN)
        self.batch_size = batch_size
        self.beta = beta
        self.source = source
        self.in_flight = in_flight
        self.request_timeout = request_timeout
        self.counters = ReplayClientCounters()
        self.max_bytes = self.specs[0].max_message_bytes
        self._outstanding: list[dict[float, float]] = [{} for _ in range(count)]  # id: sent
        self._quiet_until = [0.0] * count
        self._ids = itertools.count(1)
        self._origins: OrderedDict[int, tuple[ExperienceBatch, int]] = OrderedDict()
        self._first = 0  # the server read first (turns rotate)

    def sample(self, timeout: float) -> ExperienceBatch | None:
        """The first batch any server sends within ``timeout`` seconds; None without one."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._top_up(now)
            ready = dict(self.poller.poll(max(0, int(min(POLL_SLICE, deadline - now) * 1000))))
            count = len(self.sockets)
            self._first = (self._first + 1) % count
            for i in [(self._first + k) % count for k in range(count)]:
                if self.sockets[i] in ready:
                    batch = self._receive(i)
                    if batch is not None:
                        self._top_up(time.monotonic())  # the next one is drawn meanwhile
                        return batch
            if time.monotonic() >= deadline:
                return None

    def update_priorities(self, batch: ExperienceBatch, priorities: np.ndarray) -> bool:
        """Send ``batch``'s new priorities (N,) to its server; False when they could not go
        (a batch not from this client or already updated, or the server's queue full)."""
        origin = self._origins.pop(id(batch), None)
        if origin is None or origin[0] is not batch or batch.keys is None:
            self.counters.priorities_dropped += 1
            return False
        priorities = np.asarray(priorities, np.float32)
        if priorities.shape != batch.keys.shape:
            raise ValueError(
                f"priorities: expected shape {batch.keys.shape}, got {priorities.shape}"
            )
        fields = {"key": batch.keys, "priority": priorities}
        message = TensorMessage("priorities", fields, self.source)
        try:
            self.sockets[origin[1]].send_multipart(wire.encode(message), zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.counters.priorities_dropped += 1
            return False
        self.counters.priority_messages += 1
        return True

    def _top_up(self, now: float) -> None:
        """Give up requests older than ``request_timeout``; send until ``in_flight`` are out."""
        for i, outstanding in enumerate(self._outstanding):
            for request, sent in list(outstanding.items()):
                if now - sent > self.request_timeout:
                    del outstanding[request]
                    self.counters.timeouts += 1
            while len(outstanding) < self.in_flight and now >= self._quiet_until[i]:
                request = float(next(self._ids))
                meta = {"batch_size": self.batch_size, "beta": self.beta, "request": request}
                frames = wire.encode(TensorMessage("sample", {}, self.source, meta=meta))
                try:
                    self.sockets[i].send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:  # the pipe is full (a server long gone): try later
                    self._quiet_until[i] = now + REFUSAL_BACKOFF
                    break
                outstanding[request] = now
                self.counters.requests += 1

    def _receive(self, i: int) -> ExperienceBatch | None:
        """Read one reply from server ``i``: its batch, or None (refused, malformed)."""
        try:
            frames = self.sockets[i].recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        try:
            message = wire.decode(frames, self.max_bytes)
            self._outstanding[i].pop(message.meta.get("request", -1.0), None)
            if message.kind == "refused":
                self._refused(i, message)
                return None
            if message.kind != "batch":
                raise ProtocolError("reply kind", "batch or refused", message.kind)
            batch = batch_from_message(message)
        except ProtocolError as exc:
            self.counters.malformed += 1
            log.warning("replay %d: dropped a malformed reply: %s", i, exc)
            return None
        self.counters.batches += 1
        self.counters.items += len(batch)
        self._origins[id(batch)] = (batch, i)
        while len(self._origins) > MAX_ORIGINS:
            self._origins.popitem(last=False)
        return batch

    def _refused(self, i: int, message: TensorMessage) -> None:
        self.counters.refused += 1
        self._quiet_until[i] = time.monotonic() + REFUSAL_BACKOFF
        reason = int(message.meta.get("reason", -1))
        why = REFUSALS[reason] if 0 <= reason < len(REFUSALS) else f"reason {reason}"
        if self.counters.refused in (1, 10, 100) or self.counters.refused % 1000 == 0:
            log.info(
                "replay %d refused a sample: %s (%d items, min %d, ratio %.2f); %d refusals so far",
                i, why, message.meta.get("size", 0), message.meta.get("min_size", 0),
                message.meta.get("ratio", 0.0), self.counters.refused,
            )  # fmt: skip

    def stats(self) -> dict[str, float]:
        return {
            **dataclasses.asdict(self.counters),
            "outstanding": float(sum(map(len, self._outstanding))),  # a gauge, not a count
        }

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets = []
