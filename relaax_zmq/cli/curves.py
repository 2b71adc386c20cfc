"""Learning curves of one or several runs: a PNG (matplotlib) and the numbers as CSV.

A run is a ``metrics.logdir`` folder (its TensorBoard event files). The x axis is
the order in which the values came (``client/episode_reward`` is numbered by the
collector as it receives them: the n-th episode); each curve is smoothed with a
moving mean over ``smooth`` points, and the CSV holds the raw values too.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relaax_zmq.cli.events import EPISODE_REWARD, Point, read_scalars


@dataclass
class Curve:
    """One run's values of one tag."""

    run: str
    tag: str
    points: list[Point]

    def smoothed(self, window: int) -> list[float]:
        """The moving mean of the last ``window`` values at each point."""
        out, total = [], 0.0
        values = [p.value for p in self.points]
        for i, value in enumerate(values):
            total += value
            if i >= window:
                total -= values[i - window]
            out.append(total / min(i + 1, window))
        return out


def load_curves(runs: Sequence[Path], tags: Sequence[str] = (EPISODE_REWARD,)) -> list[Curve]:
    """The curves of ``tags`` in every run folder; runs are named by their folder."""
    names = run_names(runs)
    curves = []
    for run, name in zip(runs, names, strict=True):
        scalars = read_scalars(run, set(tags))
        for tag in tags:
            if scalars.get(tag):
                curves.append(Curve(name, tag, scalars[tag]))
    return curves


def run_names(runs: Sequence[Path]) -> list[str]:
    """Short, distinct names of run folders (their last path parts that differ)."""
    parts = [Path(r).resolve().parts for r in runs]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(r) for r in runs]


def write_csv(curves: Sequence[Curve], path: Path, smooth: int) -> None:
    """One row per point: run, tag, index, step, value, smoothed value, wall time."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "tag", "index", "step", "value", "smoothed", "wall_time"])
        for curve in curves:
            for i, (point, mean) in enumerate(
                zip(curve.points, curve.smoothed(smooth), strict=True)
            ):
                writer.writerow(
                    [curve.run, curve.tag, i, point.step, point.value, mean, point.wall_time]
                )


def write_png(curves: Sequence[Curve], path: Path, smooth: int, title: str = "") -> None:
    """One panel per tag, one line per run (smoothed), the raw values faint behind."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    tags = list(dict.fromkeys(c.tag for c in curves))
    columns = min(len(tags), 2)
    rows = math.ceil(len(tags) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for index, curve in enumerate(c for c in curves if c.tag == tag):
            color = f"C{index % 10}"
            xs = range(len(curve.points))
            ax.plot(xs, [p.value for p in curve.points], color=color, alpha=0.2, linewidth=0.8)
            ax.plot(xs, curve.smoothed(smooth), color=color, label=curve.run, linewidth=1.8)
        ax.set_title(tag)
        ax.set_xlabel("values received (episodes for client/episode_reward)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(tags) :]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_curves(
    runs: Sequence[Path],
    out: Path,
    *,
    tags: Sequence[str] = (EPISODE_REWARD,),
    smooth: int = 100,
    title: str = "",
) -> tuple[Path, Path] | None:
    """``out`` .png and .csv of the runs' curves; None when no run holds any of ``tags``."""
    curves = load_curves(runs, tags)
    if not curves:
        return None
    out = Path(out)
    png, table = out.with_suffix(".png"), out.with_suffix(".csv")
    png.parent.mkdir(parents=True, exist_ok=True)
    write_csv(curves, table, smooth)
    write_png(curves, png, smooth, title)
    return png, table
