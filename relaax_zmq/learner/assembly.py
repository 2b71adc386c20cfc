"""``BatchAssembler``: the learner's intake, without sockets.

It takes the decoded experience messages of many actors, refuses the malformed, drops the
stale, and stacks what is left into batches of ``batch_size`` items for ``Learner.learn``.

- Schema: the first accepted message fixes the field names, dtypes and per-item shapes
  (an algorithm's actors all send the same); a message that differs is refused, counted
  and named in the log, never passed on.
- Staleness: an item's lag is the learner's weight version minus the version that
  produced it. Every message's lag is counted (``lag_sum``, ``lag_max`` and a histogram
  by powers of two); messages lagging by more than ``max_lag`` are dropped and counted.
  Lag is judged again when a batch is taken: an item may grow stale while it waits.
- Memory: at most ``max_pending`` items wait; beyond that the oldest are dropped and
  counted (the sockets' own queues bound what waits before the assembler).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from relaax_zmq.core_learner import ExperienceBatch
from relaax_zmq.learner.wire import TensorMessage

#: Lag histogram buckets: 0, 1, 2-3, 4-7, ... , >= 2^(LAG_BUCKETS-2).
LAG_BUCKETS = 12


@dataclass
class IntakeCounters:
    """What the learner's intake counts."""

    messages: int = 0  # messages accepted
    items: int = 0  # items (unrolls, transitions) accepted
    refused: int = 0  # messages of a wrong schema
    stale_items: int = 0  # items dropped: lag above max_lag
    overflow_items: int = 0  # items dropped: more than max_pending waiting
    batches: int = 0  # batches handed out
    lag_sum: int = 0  # over accepted items
    lag_max: int = 0
    lag_histogram: list[int] = field(default_factory=lambda: [0] * LAG_BUCKETS)

    @property
    def mean_lag(self) -> float:
        return self.lag_sum / self.items if self.items else 0.0


@dataclass
class _Pending:
    fields: dict[str, np.ndarray]
    version: int
    steps: int
    episodes: int


def lag_bucket(lag: int) -> int:
    """The histogram bucket of ``lag``: 0, 1, 2-3, 4-7 ... (the last holds the rest)."""
    return min(LAG_BUCKETS - 1, int(lag).bit_length())


class BatchAssembler:
    """Stacks accepted items into batches of ``batch_size`` (see the module docstring)."""

    def __init__(self, batch_size: int, max_lag: int, max_pending: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.max_lag = max_lag
        self.max_pending = max_pending if max_pending is not None else 8 * batch_size
        self.schema: dict[str, tuple[np.dtype, tuple[int, ...]]] | None = None
        self.counters = IntakeCounters()
        self._pending: deque[_Pending] = deque()  # one entry per item
        self.last_refusal = ""

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, message: TensorMessage, version: int) -> int:
        """Take ``message``'s items, the learner being at weights ``version``; the items kept."""
        reason = self._check(message)
        if reason:
            self.counters.refused += 1
            self.last_refusal = f"{message.source or 'an actor'}: {reason}"
            return 0
        count = len(next(iter(message.fields.values())))
        lag = max(0, version - message.version)
        c = self.counters
        c.messages += 1
        if lag > self.max_lag:
            c.stale_items += count
            return 0
        c.items += count
        c.lag_sum += lag * count
        c.lag_max = max(c.lag_max, lag)
        c.lag_histogram[lag_bucket(lag)] += count
        share, extra = divmod(message.steps, count)  # the message's steps spread over items
        for i in range(count):  # per-item views on the received frames; stacked in take()
            steps = share + (i < extra)
            episodes = message.episodes if i == 0 else 0
            item = {k: v[i] for k, v in message.fields.items()}
            self._pending.append(_Pending(item, message.version, steps, episodes))
        while len(self._pending) > self.max_pending:
            self._pending.popleft()
            c.overflow_items += 1
        return count

    def take(self, version: int) -> ExperienceBatch | None:
        """The next batch of ``batch_size`` items fresh enough at ``version``; None: too few."""
        pending = self._pending
        while pending and version - pending[0].version > self.max_lag:
            pending.popleft()
            self.counters.stale_items += 1
        if len(pending) < self.batch_size:
            return None
        items = [pending.popleft() for _ in range(self.batch_size)]
        assert self.schema is not None
        fields = {k: np.stack([it.fields[k] for it in items]) for k in self.schema}
        self.counters.batches += 1
        return ExperienceBatch(
            fields=fields,
            versions=np.array([it.version for it in items], np.int64),
            steps=sum(it.steps for it in items),
            episodes=sum(it.episodes for it in items),
        )

    def _check(self, message: TensorMessage) -> str:
        """Why ``message`` is refused ('' when it is not)."""
        if message.kind != "unrolls":
            return f"expected kind 'unrolls', got {message.kind!r}"
        if not message.fields:
            return "expected at least one field, got none"
        sizes = {len(a) if a.ndim else -1 for a in message.fields.values()}
        if len(sizes) != 1 or -1 in sizes or 0 in sizes:
            return f"expected fields with the same number (> 0) of items, got {sorted(sizes)}"
        schema = {k: (a.dtype, a.shape[1:]) for k, a in message.fields.items()}
        if self.schema is None:
            self.schema = schema
            return ""
        if schema != self.schema:
            return f"expected the fields {_describe(self.schema)}, got {_describe(schema)}"
        return ""


def _describe(schema: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> str:
    return ", ".join(f"{k}: {d.str}{list(s)}" for k, (d, s) in schema.items())
