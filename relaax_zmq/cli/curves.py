"""Learning curves of one or several runs: a PNG (matplotlib) and the numbers as CSV.

A run is a ``metrics.logdir`` folder (its TensorBoard event files; ``resolve_runs``
finds them from what a user names). A curve's values (``client/episode_reward`` by
default) go over one of three x axes (``X_AXES``):

- ``steps``: environment steps, the running sum of the clients' ``env_steps`` (sent with
  every episode reward) up to each value's wall time; runs that send none (older runs,
  clients of other languages) count their ``episode_length`` values instead;
- ``seconds``: wall-clock seconds since the run's first event (its collector's start);
- ``episodes``: episodes so far. A vector client that ends several episodes on one step
  sends their mean as one value, with the count (``episodes``); values without a count
  are one episode each.

Each curve is smoothed with a moving mean over the last ``smooth`` episodes (each value
weighed by the episodes it is the mean of); the CSV holds the three x columns, the raw and
the smoothed values.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from relaax_zmq.cli.common import CliError, load_app
from relaax_zmq.cli.events import (
    ENV_STEPS,
    EPISODE_LENGTH,
    EPISODE_REWARD,
    EPISODES,
    Point,
    ScalarReader,
    runs_under,
)
from relaax_zmq.runtime.extras import require_extra

#: The x axes of a curve (module docstring); the first is the default.
X_AXES = ("steps", "seconds", "episodes")
LABELS = {
    "steps": "environment steps",
    "seconds": "wall-clock seconds",
    "episodes": "episodes (values received, for other tags than client/episode_reward)",
}


@dataclass
class Curve:
    """One run's values of one tag, in wall-time order, and where each stands on every x axis."""

    run: str
    tag: str
    points: list[Point]
    steps: list[int] | None  #: environment steps at each point; None when the run counts none
    seconds: list[float]  #: seconds since the run's start at each point
    #: episodes each value is the mean of (module docstring); None: one each
    weights: list[int] | None = None

    def counts(self) -> list[int]:
        """Episodes each value stands for."""
        return self.weights or [1] * len(self.points)

    def smoothed(self, window: int) -> list[float]:
        """At each point, the mean of the last ``window`` episodes (the values weighed by
        their episodes; the oldest value in the window counts in part)."""
        values, counts = [p.value for p in self.points], self.counts()
        out: list[float] = []
        total, weight, first = 0.0, 0, 0  # over the values from ``first`` to this one
        for value, count in zip(values, counts, strict=True):
            total, weight = total + value * count, weight + count
            while weight - counts[first] >= window:  # the window is full without the oldest
                total, weight = total - values[first] * counts[first], weight - counts[first]
                first += 1
            excess = max(0, weight - window)  # of the oldest value's episodes, outside
            out.append((total - values[first] * excess) / (weight - excess))
        return out

    def x(self, axis: str) -> list[float]:
        """The points' places on ``axis`` (``X_AXES``); ValueError for steps never counted."""
        if axis == "episodes":
            return list(itertools.accumulate(self.counts()))
        if axis == "seconds":
            return self.seconds
        if axis != "steps":
            raise ValueError(f"x axis {axis!r}: expected one of {', '.join(X_AXES)}")
        if self.steps is None:
            raise ValueError(f"run {self.run} reports no environment steps")
        return list(self.steps)


@dataclass
class RunScalars:
    """The scalars of one run folder, its time span and its environment step counts."""

    name: str
    path: Path
    scalars: dict[str, list[Point]]
    start: float  #: wall time of the first event (the collector's start)
    end: float  #: ... and of the last one
    #: (wall times, running sums) of the env step counts in time order; None without any
    counts: tuple[list[float], list[int]] | None

    @classmethod
    def read(cls, path: Path, name: str, tags: Sequence[str]) -> RunScalars:
        reader = ScalarReader(path, {*tags, ENV_STEPS, EPISODE_LENGTH, EPISODES})
        scalars = dict(reader.read())
        start, end = reader.span or (0.0, 0.0)
        counted = scalars.get(ENV_STEPS) or scalars.get(EPISODE_LENGTH)
        counts = None
        if counted:
            ordered = sorted(counted, key=lambda p: p.wall_time)
            sums = list(itertools.accumulate(int(round(p.value)) for p in ordered))
            counts = ([p.wall_time for p in ordered], sums)
        return cls(name, Path(path), scalars, start, end, counts)

    @property
    def seconds(self) -> float:
        """Wall-clock seconds from the first event to the last."""
        return self.end - self.start

    @property
    def total_steps(self) -> int | None:
        """Environment steps the clients reported in all; None when they report none."""
        return None if self.counts is None else self.counts[1][-1]

    def steps_at(self, wall_time: float) -> int | None:
        """Environment steps reported up to ``wall_time`` (None when the run counts none)."""
        if self.counts is None:
            return None
        times, sums = self.counts
        i = bisect.bisect_right(times, wall_time)
        return sums[i - 1] if i else 0

    def curve(self, tag: str) -> Curve | None:
        """The curve of ``tag``; None when the run has no value of it."""
        points = sorted(self.scalars.get(tag, []), key=lambda p: p.wall_time)
        if not points:
            return None
        steps = None
        if self.counts is not None:
            steps = [self.steps_at(p.wall_time) or 0 for p in points]
        seconds = [p.wall_time - self.start for p in points]
        weights = None
        if tag == EPISODE_REWARD and self.scalars.get(EPISODES):
            # a batch's values share its wall time: each mean's episode count
            count = {p.wall_time: max(1, int(round(p.value))) for p in self.scalars[EPISODES]}
            weights = [count.get(p.wall_time, 1) for p in points]
        return Curve(self.name, tag, points, steps, seconds, weights)


def resolve_runs(items: Sequence[Path], default_app: Path) -> list[Path]:
    """Run folders (those holding event files) that ``items`` name: a metrics folder, a
    folder above several, or an app file (its ``metrics.logdir``); none: ``default_app``."""
    found: list[Path] = []
    for item in items or [default_app]:
        item = Path(item)
        if item.is_file():
            item = load_app(item).metrics.logdir
        if not item.exists():
            raise CliError(f"no such run folder or app file: {item}")
        runs = runs_under(item)
        if not runs:
            raise CliError(f"no TensorBoard event files under {item}")
        found += runs
    return list(dict.fromkeys(found))


def load_runs(runs: Sequence[Path], tags: Sequence[str] = (EPISODE_REWARD,)) -> list[RunScalars]:
    """The scalars of ``tags`` (and the step counts) of every run folder, named by their folder."""
    names = run_names(runs)
    return [RunScalars.read(run, name, tags) for run, name in zip(runs, names, strict=True)]


def load_curves(runs: Sequence[Path], tags: Sequence[str] = (EPISODE_REWARD,)) -> list[Curve]:
    """The curves of ``tags`` in every run folder; runs are named by their folder."""
    return [
        curve
        for run in load_runs(runs, tags)
        for tag in tags
        if (curve := run.curve(tag)) is not None
    ]


def usable_axis(curves: Sequence[Curve], x: str) -> str:
    """``x``, or ``episodes`` when it is ``steps`` and a curve's run counts no steps."""
    if x == "steps" and any(c.steps is None for c in curves):
        return "episodes"
    return x


def run_names(runs: Sequence[Path]) -> list[str]:
    """Short, distinct names of run folders (their last path parts that differ)."""
    parts = [Path(r).resolve().parts for r in runs]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(r) for r in runs]


def write_csv(curves: Sequence[Curve], path: Path, smooth: int) -> None:
    """One row per point: run, tag, its place on each x axis (episodes, env steps, seconds),
    value, smoothed value, the event's step and wall time."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["run", "tag", "episodes", "env_steps", "seconds", "value", "smoothed", "step"]
            + ["wall_time"]
        )
        for curve in curves:
            steps = curve.steps or [None] * len(curve.points)
            episodes = curve.x("episodes")
            rows = zip(
                curve.points, curve.smoothed(smooth), episodes, steps, curve.seconds, strict=True
            )
            for point, mean, episode, env_steps, seconds in rows:
                writer.writerow(
                    [curve.run, curve.tag, episode, "" if env_steps is None else env_steps]
                    + [round(seconds, 3), point.value, mean, point.step, point.wall_time]
                )


def write_png(
    curves: Sequence[Curve], path: Path, smooth: int, title: str = "", x: str = "steps"
) -> None:
    """One panel per tag, one line per run (smoothed, a legend names the runs), the raw
    values faint behind, over the ``x`` axis."""
    matplotlib = require_extra("matplotlib", "plots", "learning curves as PNG")
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    tags = list(dict.fromkeys(c.tag for c in curves))
    columns = min(len(tags), 2)
    rows = math.ceil(len(tags) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for index, curve in enumerate(c for c in curves if c.tag == tag):
            color = f"C{index % 10}"
            xs = curve.x(x)
            ax.plot(xs, [p.value for p in curve.points], color=color, alpha=0.2, linewidth=0.8)
            ax.plot(xs, curve.smoothed(smooth), color=color, label=curve.run, linewidth=1.8)
        ax.set_title(tag)
        ax.set_xlabel(LABELS[x])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(tags) :]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_curves(
    curves: Sequence[Curve], out: Path, *, x: str = "steps", smooth: int = 100, title: str = ""
) -> tuple[Path, Path]:
    """``out`` .csv and .png (over ``x``) of ``curves``; the PNG needs the ``plots`` extra
    (``MissingExtra`` without it, once the CSV is written)."""
    out = Path(out)
    png, table = out.with_suffix(".png"), out.with_suffix(".csv")
    png.parent.mkdir(parents=True, exist_ok=True)
    write_csv(curves, table, smooth)
    write_png(curves, png, smooth, title, x)
    return png, table


def write_curves(
    runs: Sequence[Path],
    out: Path,
    *,
    tags: Sequence[str] = (EPISODE_REWARD,),
    smooth: int = 100,
    title: str = "",
    x: str = "steps",
) -> tuple[Path, Path] | None:
    """``out`` .png and .csv of the runs' curves over ``x`` (``usable_axis``); None when no
    run holds any of ``tags``."""
    curves = load_curves(runs, tags)
    if not curves:
        return None
    return save_curves(curves, out, x=usable_axis(curves, x), smooth=smooth, title=title)
