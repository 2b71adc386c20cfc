"""The replay server without sockets (``ReplayCore``): its table, its limiter, its counters,
and the rules of its messages; the daemon (``server.py``) moves them over ZeroMQ.

- Schema: the first transitions fix the table (``schema_from`` of the fields other than
  ``priority``; an item without one gets the table's largest priority); a message of
  another schema is counted (``refused_schema``) and dropped, a malformed one too
  (``malformed``).
- Batches: the table's fields, ``key`` int64, ``weight`` float32 and ``probability``
  float32; the header carries the environment steps and episodes inserted since the
  previous batch, so that a learner's pushes count every step once.
- Keys: a batch's ``key`` is the table's key (its insertion number) with the server's
  *incarnation* (random at each start, ``INCARNATION_BITS``) above bit ``KEY_BITS``, so
  that keys from before a restart name no item of the new table.
- Priorities: applied with ``update_priorities``; keys overwritten since (or from before
  a restart) are skipped and counted (``stale_priority_keys``).
- Memory: the table is preallocated at the first insert (``nbytes``, fixed from then
  on); inserts copy the decoded views once into its ring, samples gather each field in
  one vectorised step: no per-item Python loop touches a payload.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner.wire import TensorMessage
from relaax_zmq.replay.limiter import RateLimiter
from relaax_zmq.replay.table import PrioritizedTable, schema_from

#: Why a sample request was refused: a "refused" reply's meta ``reason`` indexes this.
REFUSALS = ("min_size_to_sample not reached", "samples_per_insert: waiting for inserts",
            "bad request", "too many requests held")  # fmt: skip
MIN_SIZE, RATIO, BAD_REQUEST, BUSY = range(len(REFUSALS))
#: Fields a batch adds to the table's; an insert may not use them.
RESERVED = frozenset({"key", "weight", "probability", "priority"})
#: A batch's keys: the table's key in the low ``KEY_BITS``, the incarnation above.
KEY_BITS = 40
INCARNATION_BITS = 22
#: Items one sample request may ask for at most.
MAX_BATCH = 1 << 16


@dataclass
class ReplayCounters:
    """What a replay server counts besides its table and limiter."""

    insert_messages: int = 0  # transitions messages inserted
    malformed: int = 0  # messages refused by the decoder or the checks
    refused_schema: int = 0  # transitions of another schema
    requests: int = 0  # sample requests
    batches: int = 0  # batches sent
    refused_requests: int = 0  # "refused" replies
    priority_updates: int = 0  # priorities messages applied
    stale_priority_keys: int = 0  # keys skipped: overwritten, or from before a restart
    unroutable: int = 0  # replies whose learner had gone (or was not reading)


class ReplayCore:
    """A replay server without sockets: the table, the limiter and the counters.

    Args:
        capacity, alpha: the table's (built at the first insert, from its schema).
        limiter: the rate limiter of inserts against samples.
        seed: of the sampling generator.
        incarnation: set in the keys' high bits (default: random, never 0).
    """

    def __init__(
        self,
        capacity: int,
        alpha: float,
        limiter: RateLimiter,
        *,
        seed: int = 0,
        incarnation: int | None = None,
    ):
        if capacity < limiter.min_size_to_sample:
            raise ValueError(
                f"replay capacity: expected at least min_size_to_sample "
                f"({limiter.min_size_to_sample}), got {capacity}"
            )
        self.capacity = capacity
        self.alpha = alpha
        self.limiter = limiter
        self.table: PrioritizedTable | None = None
        self.counters = ReplayCounters()
        self.rng = np.random.default_rng(seed)
        if incarnation is None:
            incarnation = 1 + secrets.randbelow((1 << INCARNATION_BITS) - 1)
        if not 0 <= incarnation < 1 << INCARNATION_BITS:
            raise ValueError(f"incarnation: expected 0..2^{INCARNATION_BITS}-1, got {incarnation}")
        self.incarnation = incarnation
        self.steps = self.episodes = 0  # inserted since the last batch
        self.last_items = 1  # items of the last insert: what the next one is judged by

    def insert(self, message: TensorMessage) -> str:
        """Store a transitions message; "" when stored, else why not (counted)."""
        fields = dict(message.fields)
        priority = fields.pop("priority", None)
        why = _check_insert(fields, priority)
        if why:
            self.counters.malformed += 1
            return why
        try:
            schema = schema_from(fields)
        except ValueError as exc:
            self.counters.malformed += 1
            return str(exc)
        if self.table is None:
            self.table = PrioritizedTable(self.capacity, schema, alpha=self.alpha)
        elif schema != dict(self.table.schema):
            self.counters.refused_schema += 1
            return f"schema: expected {_describe(self.table.schema)}, got {_describe(schema)}"
        n = len(next(iter(fields.values())))
        if priority is None:
            priority = np.full(n, self.table.max_priority)
        self.table.insert(fields, priority)
        self.limiter.inserted(n)
        self.last_items = max(1, n)
        self.steps += message.steps
        self.episodes += message.episodes
        self.counters.insert_messages += 1
        return ""

    def can_insert(self) -> bool:
        """Whether the limiter lets in a message like the last one."""
        return self.limiter.can_insert(self.last_items)

    def can_sample(self, n: int) -> bool:
        return self.table is not None and self.limiter.can_sample(n)

    def waiting_for(self) -> int:
        """Why a sample waits: ``MIN_SIZE`` or ``RATIO``."""
        return MIN_SIZE if self.limiter.inserts < self.limiter.min_size_to_sample else RATIO

    def sample(self, n: int, beta: float, meta: dict[str, float], source: str) -> TensorMessage:
        """A "batch" of ``n`` items (the caller asked ``can_sample``); counts it."""
        assert self.table is not None
        items = self.table.sample(n, self.rng, beta)
        self.limiter.sampled(n)
        fields = {
            **items.fields,
            "key": items.keys | (self.incarnation << KEY_BITS),
            "weight": items.weights,
            "probability": items.probabilities.astype(np.float32),
        }
        steps, episodes, self.steps, self.episodes = self.steps, self.episodes, 0, 0
        self.counters.batches += 1
        return TensorMessage("batch", fields, source, 0, steps, episodes, meta)

    def update_priorities(self, message: TensorMessage) -> str:
        """Apply a priorities message; "" when applied, else why not (counted malformed)."""
        keys, priorities = message.fields.get("key"), message.fields.get("priority")
        if keys is None or priorities is None or set(message.fields) != {"key", "priority"}:
            self.counters.malformed += 1
            return f"priorities: expected fields ['key', 'priority'], got {sorted(message.fields)}"
        try:
            if keys.dtype.kind not in "iu" or keys.ndim != 1 or priorities.shape != keys.shape:
                raise ValueError(
                    f"key, priority: expected integers (N,) and priorities (N,), "
                    f"got {keys.dtype} {keys.shape} and {priorities.shape}"
                )
            keys = keys.astype(np.int64)
            ours = (keys >> KEY_BITS) == self.incarnation  # the others are from another run
            mine = keys[ours] & ((1 << KEY_BITS) - 1)
            applied = 0
            if self.table is not None:
                applied = self.table.update_priorities(mine, priorities[ours])
        except ValueError as exc:
            self.counters.malformed += 1
            return str(exc)
        self.counters.priority_updates += 1
        self.counters.stale_priority_keys += int(keys.shape[0]) - applied
        return ""

    def stats(self) -> dict[str, float]:
        """The flat figures of the status (module docstring)."""
        table, limiter = self.table, self.limiter
        return {
            "size": len(table) if table else 0,
            "capacity": self.capacity,
            "inserted": limiter.inserts,
            "sampled": limiter.samples,
            "samples_per_insert": limiter.ratio,
            "blocked_samples": limiter.blocked_samples,
            "blocked_inserts": limiter.blocked_inserts,
            "nbytes": table.nbytes if table else 0,
            **dataclasses.asdict(self.counters),
        }


def _check_insert(fields: dict[str, np.ndarray], priority: np.ndarray | None) -> str:
    if not fields:
        return "transitions: expected fields besides priority, got none"
    reserved = sorted(RESERVED & set(fields))
    if reserved:
        return (
            f"transitions: expected none of the reserved names {sorted(RESERVED)}, got {reserved}"
        )
    sizes = {a.shape[0] if a.ndim else -1 for a in fields.values()}
    n = sizes.pop()
    if sizes or n < 1:
        return f"transitions: expected every field (N, ...) with one N >= 1, got sizes {sorted({n, *sizes})}"
    if priority is not None:
        if priority.shape != (n,) or priority.dtype.kind != "f":
            return f"priority: expected float ({n},), got {priority.dtype} {priority.shape}"
        if not (np.isfinite(priority).all() and (priority >= 0).all()):
            return "priority: expected finite values >= 0"
    return ""


def _describe(schema: Any) -> str:
    return ", ".join(f"{k} {np.dtype(d).str}{list(s)}" for k, (s, d) in sorted(schema.items()))


def parse_request(message: TensorMessage) -> tuple[int, float]:
    """A sample request's ``batch_size`` and ``beta``; ``ProtocolError`` naming the bad one."""
    n, beta = message.meta.get("batch_size"), message.meta.get("beta", 1.0)
    if n is None or n != int(n) or not 1 <= n <= MAX_BATCH:
        raise ProtocolError("meta.batch_size", f"an integer in 1..{MAX_BATCH}", n)
    if not 0.0 <= beta <= 1.0:
        raise ProtocolError("meta.beta", "a number in [0, 1]", beta)
    return int(n), float(beta)
