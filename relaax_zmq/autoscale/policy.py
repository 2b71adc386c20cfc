"""When to add and remove workers: a pure rule over the broker's admission figures.

No sockets and no processes: ``ScalingPolicy.decide`` takes one ``Observation`` at a time
(the broker's status as the autoscaler read it) and returns a ``Decision``; tests drive it
with made-up figures, like ``broker.balance``. The rule (docs/autoscale.md):

- below ``min`` workers: add up to ``min`` at once;
- demand is *high* while the broker refused sessions since the last look, or sessions
  fill ``high_water`` of the live workers' capacity; high for ``up_after`` seconds: add
  ``up_step`` workers (at most ``max``);
- demand is *low* while sessions fill less than ``low_water`` of the capacity and the
  workers left after removing one would hold them below ``high_water``; low for
  ``down_after`` seconds: remove one (never below ``min``);
- after any change nothing more happens for ``cooldown`` seconds (a new worker needs a
  moment to register; a drained one to hand its sessions over).
"""

from __future__ import annotations

from dataclasses import dataclass

from relaax_zmq.config.operations import AutoscaleConfig


@dataclass(frozen=True)
class Observation:
    """The broker's figures at ``time`` and the autoscaler's own workers."""

    time: float
    #: the broker's ``refused_inits`` counter (cumulative)
    refused_inits: int
    #: sessions placed on workers, cluster-wide
    sessions: int
    #: sessions the live, non-draining workers can host, cluster-wide
    capacity: int
    #: workers this autoscaler runs and is not removing
    workers: int
    #: sessions one of its workers can host (``workers.max_sessions``)
    worker_capacity: int


@dataclass(frozen=True)
class Decision:
    """Workers to add (> 0), remove (< 0) or neither (0), and why."""

    change: int
    reason: str


class ScalingPolicy:
    """The rule of the module docstring, with the state it needs between looks.

    Args:
        config: the ``autoscale`` section (watermarks, delays, ``up_step``).
        minimum, maximum: the bounds (``--min``/``--max`` override the section's).
    """

    def __init__(self, config: AutoscaleConfig, minimum: int, maximum: int) -> None:
        if not 0 <= minimum <= maximum or maximum < 1:
            raise ValueError(f"expected 0 <= min <= max and max >= 1, got {minimum}, {maximum}")
        self.config = config
        self.minimum, self.maximum = minimum, maximum
        self._refused: int | None = None
        self._high_since: float | None = None
        self._low_since: float | None = None
        self._changed: float | None = None

    def load(self, seen: Observation) -> float:
        """Sessions over capacity (1.0 when there is no capacity and sessions want some)."""
        if seen.capacity <= 0:
            return 1.0 if seen.sessions else 0.0
        return seen.sessions / seen.capacity

    def decide(self, seen: Observation) -> Decision:
        """What to do now (see the module docstring)."""
        c, now = self.config, seen.time
        refused = self._refused is not None and seen.refused_inits > self._refused
        self._refused = seen.refused_inits
        if seen.workers < self.minimum:
            return self._change(now, self.minimum - seen.workers, f"below min {self.minimum}")
        load = self.load(seen)
        high = refused or load >= c.high_water
        left = seen.capacity - seen.worker_capacity
        low = (
            not high
            and load < c.low_water
            and seen.workers > self.minimum
            and (seen.sessions == 0 or (left > 0 and seen.sessions / left < c.high_water))
        )
        self._high_since = _since(self._high_since, now) if high else None
        self._low_since = _since(self._low_since, now) if low else None
        if self._changed is not None and now - self._changed < c.cooldown:
            return Decision(0, "cooldown")
        if high and now - self._high_since >= c.up_after and seen.workers < self.maximum:
            add = min(c.up_step, self.maximum - seen.workers)
            why = "sessions refused" if refused else f"load {load:.2f} >= {c.high_water}"
            return self._change(now, add, f"{why} for {now - self._high_since:.1f} s")
        if low and now - self._low_since >= c.down_after:
            return self._change(
                now, -1, f"load {load:.2f} < {c.low_water} for {now - self._low_since:.1f} s"
            )
        if high and seen.workers >= self.maximum:
            return Decision(0, f"at max {self.maximum}")
        return Decision(0, "steady")

    def _change(self, now: float, change: int, reason: str) -> Decision:
        self._changed = now
        self._high_since = self._low_since = None
        return Decision(change, reason)


def _since(started: float | None, now: float) -> float:
    """When a condition that holds at ``now`` began (``started``, or now if it just did)."""
    return now if started is None else started
