"""Per-peer budgets: how much refused traffic one connection may cost before it is cut off.

A pure core, no sockets (like ``balance``): the broker's frontend charges every message it
refused (an error reply: ``TOO_LARGE``, ``MALFORMED``, ``BUSY`` ...) to the connection that
sent it, 1 + its size / 32 KiB tokens; a connection whose budget is overdrawn is *cut*: one
``BUSY`` naming the budget, then the broker closes the connection (docs/security.md,
"Per-peer budget"). Legal traffic is never charged, so a well-behaved client never meets it.

Why refusals, and why cut rather than drop: measured with ``python -m bench.oversize`` on
2 cores, a peer flooding frames at the size limit costs the machine far more outside the
broker's Python loop (its own process and ZeroMQ's I/O threads moving 1.3 GB/s) than in it;
refusing faster would not help, only stopping its bytes does. A ROUTER cannot stop reading
one peer, but it can lose one (the peer reconnects after its reconnect interval, as a new
connection with a full budget).

Reuse (the WebSocket gateway applies the same rule per connection)::

    budget = PeerBudget(rate=20.0, burst=16.0)     # broker.peer_refusal_rate / _burst
    ...
    if refused:                                    # this connection's message was refused
        cost = refusal_cost(size)                  # bigger refusals cost more
        if not budget.charge(peer_id, time.monotonic(), cost):
            close(peer_id, budget_text(20.0, 16))  # overdrawn: say why, then close
    ...
    budget.forget(peer_id)                         # the connection ended
    budget.sweep(time.monotonic())                 # now and then: forget settled peers

``TokenBucket`` is the single-bucket form, for a caller that keeps one per connection.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BYTES_PER_TOKEN", "PeerBudget", "TokenBucket", "budget_text", "refusal_cost"]

#: Bytes of a refused message that cost one more token: a refused frame at the size limit
#: costs far more (I/O, memory, a decode) than a bad header.
BYTES_PER_TOKEN = 32 << 10


def refusal_cost(size: int) -> float:
    """Tokens a refused message of ``size`` bytes costs: 1 + size / ``BYTES_PER_TOKEN``."""
    return 1.0 + size / BYTES_PER_TOKEN


@dataclass
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; ``take`` spends them.

    Args:
        rate: tokens added per second (> 0).
        burst: the most tokens held, and the number held at the start (>= 1).
        now: the time of creation (``time.monotonic()`` seconds).
    """

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        """A bucket holding ``burst`` tokens at ``now``."""
        if rate <= 0 or burst < 1:
            raise ValueError(f"expected rate > 0 and burst >= 1, got {rate} and {burst}")
        return cls(rate, burst, burst, now)

    def refill(self, now: float) -> float:
        """The tokens held at ``now`` (time running backwards adds nothing)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        return self.tokens

    def pace(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens even into debt; the seconds to wait until the debt is paid
        (0: none). A sender that waits that long before going on spends ``rate`` a second
        at most (the gateway's per-connection rate limits)."""
        self.tokens = self.refill(now) - cost
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if held (True); else spend nothing (False)."""
        if self.refill(now) >= cost:
            self.tokens -= cost
            return True
        return False


class PeerBudget:
    """A ``TokenBucket`` per peer id, made full on the peer's first charge.

    Memory is bounded: a peer is forgotten once its bucket would be full again (it owes
    nothing), checked on ``sweep``; at most ``max_peers`` are tracked (the oldest charged
    is forgotten first, which can only help the forgotten peer).
    """

    def __init__(self, rate: float, burst: float, max_peers: int = 65536) -> None:
        TokenBucket.full(rate, burst, 0.0)  # validates
        self.rate = rate
        self.burst = burst
        self.max_peers = max_peers
        self._buckets: dict[bytes, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def charge(self, peer: bytes, now: float, cost: float = 1.0) -> bool:
        """Charge ``peer`` ``cost``; False when its budget is spent (nothing is charged)."""
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= self.max_peers:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[peer] = TokenBucket.full(self.rate, self.burst, now)
        return bucket.take(now, cost)

    def tokens(self, peer: bytes, now: float) -> float:
        """What ``peer`` may still spend at ``now`` (``burst`` for an unknown peer)."""
        bucket = self._buckets.get(peer)
        return self.burst if bucket is None else bucket.refill(now)

    def forget(self, peer: bytes) -> None:
        """Drop ``peer``'s bucket (its connection ended or was cut)."""
        self._buckets.pop(peer, None)

    def sweep(self, now: float) -> int:
        """Forget every peer whose bucket has refilled; how many were forgotten."""
        full = [p for p, b in self._buckets.items() if b.refill(now) >= self.burst]
        for peer in full:
            del self._buckets[peer]
        return len(full)


def budget_text(rate: float, burst: float) -> str:
    """The ``BUSY`` text a peer gets when its budget is spent, before it is cut off."""
    return (
        f"peer budget spent: refused messages worth more than {burst:g} at once (each 1 + "
        f"its size / {BYTES_PER_TOKEN >> 10} KiB), or {rate:g} a second; this connection is "
        "closed (reconnect and send legal requests)"
    )
