"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable, Mapping


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
