"""The block table: which worker hosts each block, who owns it, what is in flight.

A block is the sessions ``id .. id + count - 1`` (docs/exchange.md, "Sessions and
blocks"); ids are random, non-zero, 62-bit and blocks never overlap. Each block
keeps its forwarded requests until their replies come back, so that they can be
sent again to a new worker when the block is re-homed.
"""

from __future__ import annotations

import bisect
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Block ids are below this (62 bits), so that ``id + count`` always fits a u64.
ID_LIMIT = 1 << 62
#: Requests of one block the broker keeps in flight at most; more are answered BUSY, so that
#: a client pipelining without reading replies cannot grow the broker's memory.
MAX_IN_FLIGHT = 64


@dataclass
class InFlight:
    """One forwarded request waiting for its worker's reply."""

    identity: bytes
    frames: list[Any]
    boundary: bool
    sent: float


@dataclass
class Block:
    """One block of sessions, hosted whole by one worker."""

    id: int
    count: int
    exploit: bool
    worker: bytes
    client: bytes
    created: float
    placed: float
    last_seen: float
    in_flight: dict[int, InFlight] = field(default_factory=dict)

    @property
    def last(self) -> int:
        """The block's last session id."""
        return self.id + self.count - 1


def not_owned(session_id: int, count: int) -> str:
    """The UNKNOWN_SESSION text for a request naming no block of its connection."""
    return f"session {session_id} (count {count}): no such block on this connection; init again"


class SessionTable:
    """Every live block, by first id, by worker and by client connection."""

    def __init__(self, randbits: Any = secrets.randbits) -> None:
        self._blocks: dict[int, Block] = {}
        self._starts: list[int] = []  # sorted first ids, for containment lookups
        self._by_worker: dict[bytes, set[int]] = {}
        self._randbits = randbits
        self.removed = 0  #: blocks removed so far

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(list(self._blocks.values()))

    def get(self, block_id: int) -> Block | None:
        return self._blocks.get(block_id)

    def sessions(self) -> int:
        """Sessions in every block."""
        return sum(b.count for b in self._blocks.values())

    def new_id(self, count: int) -> int:
        """A random non-zero id whose block of ``count`` overlaps no live block."""
        if not 1 <= count < ID_LIMIT // 2:
            raise ValueError(f"block size {count} out of range")
        while True:
            first = self._randbits(62)
            if first == 0 or first + count > ID_LIMIT:
                continue
            if not self._overlaps(first, first + count - 1):
                return first

    def _overlaps(self, first: int, last: int) -> bool:
        i = bisect.bisect_right(self._starts, last)
        if i == 0:
            return False
        before = self._blocks[self._starts[i - 1]]
        return before.last >= first

    def resumable(self, session_id: int, count: int) -> Block | None:
        """The live block an init naming ``session_id`` and ``count`` resumes; None: a new init."""
        block = self._blocks.get(session_id) if session_id else None
        return block if block is not None and block.count == count else None

    def owned(self, session_id: int, count: int, client: bytes) -> Block | None:
        """The live block a request names, when connection ``client`` owns it; else None."""
        block = self._blocks.get(session_id)
        if block is not None and block.count == count and block.client == client:
            return block
        return None

    def rebind(self, block: Block, client: bytes, now: float) -> int:
        """Give ``block`` to connection ``client`` (a resume); the requests in flight for the old
        connection are forgotten (their replies could not be delivered): returns how many."""
        dropped = len(block.in_flight)
        block.in_flight.clear()
        block.client = client
        block.last_seen = now
        return dropped

    def add(self, count: int, exploit: bool, worker: bytes, client: bytes, now: float) -> Block:
        """Create a block on ``worker`` owned by ``client``."""
        block = Block(self.new_id(count), count, exploit, worker, client, now, now, now)
        self._blocks[block.id] = block
        bisect.insort(self._starts, block.id)
        self._by_worker.setdefault(worker, set()).add(block.id)
        return block

    def remove(self, block_id: int) -> Block | None:
        """Forget a block; its in-flight requests stay on the returned object."""
        block = self._blocks.pop(block_id, None)
        if block is None:
            return None
        self.removed += 1
        i = bisect.bisect_left(self._starts, block_id)
        del self._starts[i]
        ids = self._by_worker.get(block.worker)
        if ids is not None:
            ids.discard(block_id)
            if not ids:
                del self._by_worker[block.worker]
        return block

    def detach(self, block: Block) -> None:
        """Take ``block`` off its worker (it is being re-homed)."""
        ids = self._by_worker.get(block.worker)
        if ids is not None:
            ids.discard(block.id)
            if not ids:
                del self._by_worker[block.worker]
        block.worker = b""

    def attach(self, block: Block, worker: bytes, now: float) -> None:
        """Put ``block`` on ``worker`` (off its current one)."""
        self.detach(block)
        block.worker = worker
        block.placed = now
        self._by_worker.setdefault(worker, set()).add(block.id)

    def containing(self, session_id: int) -> Block | None:
        """The block that holds session ``session_id``."""
        i = bisect.bisect_right(self._starts, session_id)
        if i == 0:
            return None
        block = self._blocks[self._starts[i - 1]]
        return block if block.last >= session_id else None

    def on_worker(self, worker: bytes) -> list[Block]:
        """The blocks ``worker`` hosts, oldest first."""
        blocks = [self._blocks[i] for i in self._by_worker.get(worker, ())]
        return sorted(blocks, key=lambda b: (b.created, b.id))

    def worker_load(self, worker: bytes) -> tuple[int, int, int]:
        """(blocks, sessions, requests in flight) of ``worker``."""
        ids = self._by_worker.get(worker, ())
        blocks = [self._blocks[i] for i in ids]
        return len(blocks), sum(b.count for b in blocks), sum(len(b.in_flight) for b in blocks)

    def in_flight(self) -> int:
        """Requests in flight over every block."""
        return sum(len(b.in_flight) for b in self._blocks.values())
