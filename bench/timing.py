"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import timeit
from collections.abc import Callable


def best_seconds(fn: Callable[[], object], repeat: int = 5, min_time: float = 0.05) -> float:
    """Best per-call time of ``fn`` over ``repeat`` runs of an auto-sized loop."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * min_time / 0.2))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def table(rows: list[list[str]]) -> str:
    """Plain text table, first row as the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
