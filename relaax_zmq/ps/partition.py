"""How the flat parameter vector is cut into shards: contiguous, near-equal slices."""

from __future__ import annotations

from typing import NamedTuple


class Slice(NamedTuple):
    """Elements ``offset .. offset + count - 1`` of the flat parameter vector."""

    offset: int
    count: int

    @property
    def stop(self) -> int:
        """One past the last element (``vector[s.offset : s.stop]``)."""
        return self.offset + self.count


def shard_bounds(count: int, shards: int) -> list[Slice]:
    """The slice of each of ``shards`` shards of a ``count``-element vector.

    The first ``count % shards`` shards hold one element more than the others, so
    sizes differ by at most one; with more shards than elements some are empty.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count: expected an int >= 0, got {count!r}")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards: expected an int >= 1, got {shards!r}")
    base, extra = divmod(count, shards)
    bounds, offset = [], 0
    for i in range(shards):
        size = base + (1 if i < extra else 0)
        bounds.append(Slice(offset, size))
        offset += size
    return bounds
