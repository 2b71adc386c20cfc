"""Worker choice and admission: pure functions over load figures, no sockets, no clock.

``least_loaded`` picks the worker for a block (docs/exchange.md, "Worker choice");
``admission_refusal`` says why an init must be refused with BUSY, or None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

MIB = 1 << 20


class Load(NamedTuple):
    """What the balancer knows of one worker."""

    name: str
    sessions: int
    capacity: int
    in_flight: int = 0
    alive: bool = True
    draining: bool = False

    @property
    def room(self) -> int:
        """Sessions this worker can still take (never negative)."""
        return max(0, self.capacity - self.sessions)

    @property
    def ratio(self) -> float:
        """``sessions / capacity`` (infinite for a worker without capacity)."""
        return self.sessions / self.capacity if self.capacity > 0 else float("inf")


def eligible(load: Load, needed: int) -> bool:
    """Live, not draining, with room for ``needed`` more sessions."""
    return load.alive and not load.draining and load.capacity > 0 and load.room >= needed


def least_loaded(workers: Iterable[Load], needed: int) -> str | None:
    """The worker a block of ``needed`` sessions goes to, or None when none has room.

    Among eligible workers: the lowest ``sessions / capacity``, then the fewest
    requests in flight, then the smallest name.
    """
    best: Load | None = None
    for load in workers:
        if not eligible(load, needed):
            continue
        if best is None or _key(load) < _key(best):
            best = load
    return None if best is None else best.name


def _key(load: Load) -> tuple[float, int, str]:
    return (load.ratio, load.in_flight, load.name)


def should_move(current: Load, block_sessions: int, others: Iterable[Load]) -> str | None:
    """The worker a block should move to at an episode boundary, or None to stay.

    ``current`` counts the block among its sessions. A draining (or dead) current
    worker gives the block to any eligible worker; otherwise the block moves only
    when ``least_loaded`` picks another worker whose load with the block would be
    strictly lower than the current one's (no ping-pong between equal workers).
    """
    candidates = [w for w in others if w.name != current.name]
    target = least_loaded(candidates, block_sessions)
    if target is None:
        return None
    if current.draining or not current.alive:
        return target
    chosen = next(w for w in candidates if w.name == target)
    after = (chosen.sessions + block_sessions) / chosen.capacity
    return target if after < current.ratio else None


def admission_refusal(
    available_bytes: int, min_free_mib: int, workers: Iterable[Load], needed: int
) -> str | None:
    """Why a new block of ``needed`` sessions is refused (the BUSY text), or None to admit.

    Memory is checked first (``available_bytes`` below ``min_free_mib``), then
    worker capacity; the text gives the figures.
    """
    available_mib = available_bytes / MIB
    if available_mib < min_free_mib:
        return (
            f"memory: {available_mib:.0f} MiB available, below "
            f"broker.min_free_memory_mib ({min_free_mib} MiB)"
        )
    loads = list(workers)
    if any(eligible(w, needed) for w in loads):
        return None
    live = [w for w in loads if w.alive and not w.draining]
    if not live:
        draining = sum(1 for w in loads if w.alive and w.draining)
        extra = f" ({draining} draining)" if draining else ""
        return f"capacity: no live worker{extra} for {needed} sessions"
    most = max(w.room for w in live)
    return (
        f"capacity: no worker has room for {needed} sessions "
        f"({len(live)} live workers, at most {most} free on one)"
    )
