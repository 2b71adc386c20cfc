"""Which checkpoints of one shard in one location to delete (a pure decision)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    """What reading a checkpoint found."""

    VALID = "valid"  # loads and its checksum matches
    CORRUPT = "corrupt"  # refused by the loader: it can never be restored
    UNKNOWN = "unknown"  # could not be read (I/O error): treated as possibly valid


@dataclass(frozen=True)
class Inspection:
    """A checkpoint's status and, when valid, its score."""

    status: Status
    score: float | None = None


def to_delete(
    names: Sequence[tuple[int, str]],
    inspect: Callable[[str], Inspection],
    *,
    keep: int,
    keep_best: int,
) -> list[str]:
    """Names (from ``(global_step, name)`` pairs) that retention removes.

    Kept: the ``keep`` newest valid checkpoints (so always the newest valid one), the
    ``keep_best`` valid ones with the highest score (ties: newer first), and corrupt ones newer
    than the newest valid one (nothing supersedes them yet). One that could not be read is
    kept while its contents could matter. Everything else goes. ``inspect`` is called lazily:
    with ``keep_best == 0`` only back to the ``keep``-th valid checkpoint; older ones are
    deleted unread.
    """
    newest_first = sorted(names, reverse=True)
    inspected: dict[str, Inspection] = {}
    valid: list[tuple[int, str]] = []
    for step, name in newest_first:
        if keep_best == 0 and len(valid) >= keep:
            break
        inspected[name] = found = inspect(name)
        if found.status is Status.VALID:
            valid.append((step, name))
    kept = {name for _, name in valid[:keep]}
    scored = [
        (inspected[name].score, step, name)
        for step, name in valid
        if inspected[name].score is not None
    ]
    kept.update(name for _, _, name in sorted(scored, reverse=True)[:keep_best])
    newest_valid = valid[0][0] if valid else None
    doomed = []
    for step, name in newest_first:
        found = inspected.get(name)
        if name in kept or (found is not None and found.status is Status.UNKNOWN):
            continue
        if found is not None and found.status is Status.CORRUPT:
            if newest_valid is None or step > newest_valid:
                continue
        doomed.append(name)
    return doomed
