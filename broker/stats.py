"""The broker's counters and sliding-window rates, as the admin status reports them."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from relaax_zmq.protocol import ErrorCode


class RateWindow:
    """Events per second over the last ``window`` seconds, in one-second buckets."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._buckets: deque[list[float]] = deque()  # [second, messages, steps]

    def add(self, now: float, messages: int = 0, steps: int = 0) -> None:
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
            bucket[1] += messages
            bucket[2] += steps
        else:
            self._buckets.append([second, messages, steps])
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window - 1:
            self._buckets.popleft()

    def rates(self, now: float, started: float) -> dict[str, float]:
        """``messages_per_s`` and ``steps_per_s`` over the window (or since ``started``)."""
        self._trim(now)
        start = max(now - self.window, started)
        span = max(now - start, 1e-3)
        messages = steps = 0.0
        for second, m, s in self._buckets:
            # a bucket partly outside the window counts for the part inside
            part = min(1.0, max(0.0, second + 1 - start)) if second < start else 1.0
            messages += m * part
            steps += s * part
        return {"messages_per_s": round(messages / span, 3), "steps_per_s": round(steps / span, 3)}


@dataclass
class Counters:
    """Totals since the broker started."""

    requests: int = 0  # client messages received
    replies: int = 0  # messages sent to clients
    forwarded: int = 0  # requests forwarded to workers
    dropped_replies: int = 0  # replies to a vanished client or over a full queue
    dropped_link: int = 0  # link messages that could not be sent to a worker
    bad_link: int = 0  # garbage or unexpected link messages from workers
    stale_replies: int = 0  # worker replies for no request in flight
    rehomed_blocks: int = 0
    lost_blocks: int = 0  # blocks no worker could take on re-homing
    moved_blocks: int = 0  # rebalance and drain moves
    idle_released: int = 0
    refused_inits: int = 0
    refused_workers: int = 0  # registrations refused: the name is held by a live worker
    resumed_blocks: int = 0
    refused_messages: int = 0  # from keys revoked (or no longer allowed) since their handshake
    error_replies: int = 0  # error replies to clients (each is charged to its connection)
    cut_peers: int = 0  # client connections closed for spending their budget (fairness)
    cut_dropped: int = 0  # messages of a connection being closed, dropped unread
    errors: Counter[str] = field(default_factory=Counter)

    def error(self, code: int) -> None:
        self.error_replies += 1
        try:
            self.errors[ErrorCode(code).name] += 1
        except ValueError:
            self.errors[str(code)] += 1

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "errors"}
        out["errors"] = dict(self.errors)
        return out
