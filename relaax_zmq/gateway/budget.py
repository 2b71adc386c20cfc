"""Per-connection budgets of the gateway, on the broker's token buckets (``broker.fairness``).

- Rates: a connection that sends faster than ``gateway.rate_limit`` messages or
  ``byte_rate_limit`` bytes a second is not answered with errors: the gateway waits before
  reading its next message, so TCP slows the sender down and nothing it sends piles up here.
- Refusals: every message the gateway refuses itself (TOO_LARGE) costs the connection as
  the broker charges its peers (1 + size / 32 KiB against ``broker.peer_refusal_rate`` and
  ``peer_refusal_burst``); once spent, the connection is closed (1008), as the broker cuts
  a ZeroMQ peer (docs/security.md, "Per-peer budget").
"""

from __future__ import annotations

from dataclasses import dataclass

from relaax_zmq.broker.fairness import TokenBucket, refusal_cost

__all__ = ["ConnectionBudget"]


@dataclass
class ConnectionBudget:
    """The message, byte and refusal buckets of one connection."""

    messages: TokenBucket
    bytes: TokenBucket
    refusals: TokenBucket

    @classmethod
    def of(
        cls,
        *,
        rate: float,
        burst: int,
        byte_rate: float,
        byte_burst: int,
        refusal_rate: float,
        refusal_burst: float,
        now: float,
    ) -> ConnectionBudget:
        return cls(
            TokenBucket.full(rate, burst, now),
            TokenBucket.full(byte_rate, byte_burst, now),
            TokenBucket.full(refusal_rate, refusal_burst, now),
        )

    def delay(self, size: int, now: float) -> float:
        """Seconds to wait after a message of ``size`` bytes arrived at ``now``."""
        return max(self.messages.pace(now), self.bytes.pace(now, size))

    def refused(self, size: int, now: float) -> bool:
        """Charge a refused message of ``size`` bytes; False once the budget is spent."""
        return self.refusals.take(now, refusal_cost(size))
