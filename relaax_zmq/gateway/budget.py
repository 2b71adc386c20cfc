"""Per-connection rate budgets of the gateway: token buckets, pure (no sockets, no clock).

A connection that sends faster than its budget is not answered with errors: the
gateway waits before reading its next message, so TCP slows the sender down and
nothing it sends piles up in the gateway (docs/gateway.md, "Limits").
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConnectionBudget", "TokenBucket"]


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; a cost may run into debt.

    ``delay(cost, now)`` takes ``cost`` tokens and returns how long the caller must wait
    before going on so that, over time, it spends no more than ``rate`` a second.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError(f"expected rate and burst > 0, got {self.rate} and {self.burst}")
        self.tokens = self.burst

    def delay(self, cost: float, now: float) -> float:
        """Seconds to wait after spending ``cost`` tokens at time ``now`` (0: go on)."""
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= cost
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class ConnectionBudget:
    """Messages and bytes a second of one connection (``gateway.rate_limit``,
    ``rate_burst``, ``byte_rate_limit``; bytes may burst to ``byte_burst``)."""

    messages: TokenBucket
    bytes: TokenBucket

    @classmethod
    def of(cls, rate: float, burst: int, byte_rate: float, byte_burst: int) -> ConnectionBudget:
        return cls(TokenBucket(rate, burst), TokenBucket(byte_rate, byte_burst))

    def delay(self, size: int, now: float) -> float:
        """Seconds to wait after a message of ``size`` bytes arrived at ``now``."""
        return max(self.messages.delay(1, now), self.bytes.delay(size, now))
