"""Timing helpers shared by the benchmarks, and their SIGTERM handling."""

from __future__ import annotations

import json
import signal
import timeit
from collections.abc import Callable, Mapping
from typing import Any


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


def print_figures_line(figures: Mapping[str, Mapping[str, float]], digits: int = 2) -> None:
    """The benchmark's last line: its figures, rounded, as one JSON object."""
    rounded = {k: {n: round(v, digits) for n, v in f.items()} for k, f in figures.items()}
    print(json.dumps(rounded))


def exit_on_sigterm() -> None:
    """Make SIGTERM raise ``SystemExit``, so that the ``with`` and ``finally`` blocks of a
    benchmark stop the processes it started instead of leaving them running."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
