"""``relaax-zmq compare RUN ...``: rank runs of one environment by how fast and how well they learned.

A RUN is what ``plot`` takes: a metrics folder (``metrics.logdir``), a folder above
several, or an app file (its ``metrics.logdir``); default: the app of ``-c``. For each
run, from its episode rewards (``client/episode_reward``) and environment steps
(``client/env_steps``, see ``plot``): the best and the final mean reward over
``--window`` episodes (fewer when the run has fewer), the environment steps and seconds
until that mean first reached ``--threshold`` (when given), and the run's environment
steps and seconds in all. Runs are ranked by seconds to the threshold (those that
reached it first), then by best mean. ``--json`` prints the table as one JSON object.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, print_json
from relaax_zmq.cli.curves import RunScalars, load_runs, resolve_runs
from relaax_zmq.cli.events import EPISODE_REWARD

HELP = "rank runs by time and steps to a reward threshold, and best mean reward"


@dataclass
class Standing:
    """One run's line in the table (None: unknown, or the threshold not reached)."""

    run: str
    episodes: int
    best_mean: float
    final_mean: float
    steps_to_threshold: int | None
    seconds_to_threshold: float | None
    total_steps: int | None
    seconds: float

    @property
    def reached(self) -> bool:
        return self.seconds_to_threshold is not None


def standing(run: RunScalars, window: int, threshold: float | None) -> Standing | None:
    """How ``run`` did (module docstring); None when it has no episode reward."""
    curve = run.curve(EPISODE_REWARD)
    if curve is None:
        return None
    means = curve.smoothed(window)
    episodes = curve.x("episodes")
    # the first mean over a whole window (the last one when the run has fewer episodes)
    first_full = next((i for i, n in enumerate(episodes) if n >= window), len(means) - 1)
    full = range(first_full, len(means))
    steps_to = seconds_to = None
    if threshold is not None:
        hit = next((i for i in full if means[i] >= threshold), None)
        if hit is not None:
            seconds_to = curve.seconds[hit]
            steps_to = None if curve.steps is None else curve.steps[hit]
    return Standing(
        run=run.name,
        episodes=int(episodes[-1]),
        best_mean=max(means[i] for i in full),
        final_mean=means[-1],
        steps_to_threshold=steps_to,
        seconds_to_threshold=seconds_to,
        total_steps=run.total_steps,
        seconds=run.seconds,
    )


def ranked(standings: list[Standing]) -> list[Standing]:
    """Those that reached the threshold first, sooner first; then the best means."""
    return sorted(
        standings,
        key=lambda s: (
            not s.reached,
            math.inf if s.seconds_to_threshold is None else s.seconds_to_threshold,
            -s.best_mean,
        ),
    )


def table(standings: list[Standing], threshold: float | None) -> str:
    """The ranked standings as aligned text columns."""
    header = ["#", "run", "best mean", "final mean", "episodes", "env steps", "seconds"]
    if threshold is not None:
        header += [f"steps to {threshold:g}", f"seconds to {threshold:g}"]
    rows = [header]
    for rank, s in enumerate(standings, start=1):
        row = [
            str(rank),
            s.run,
            f"{s.best_mean:.2f}",
            f"{s.final_mean:.2f}",
            f"{s.episodes:,}",
            _count(s.total_steps),
            f"{s.seconds:,.0f}",
        ]
        if threshold is not None:
            if s.reached:
                row += [_count(s.steps_to_threshold), f"{s.seconds_to_threshold:,.0f}"]
            else:
                row += ["not reached", "not reached"]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="*", type=Path, metavar="RUN", help="metrics folders or app files"
    )
    add_app_option(parser)
    parser.add_argument("--window", type=int, default=100, help="episodes in the moving mean (100)")
    parser.add_argument("--threshold", type=float, help="the mean reward to reach")
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.window < 1:
        raise CliError(f"--window expects a number >= 1, got {args.window}", code=2)
    runs = load_runs(resolve_runs(args.runs, args.config))
    found = [s for s in (standing(r, args.window, args.threshold) for r in runs) if s]
    if not found:
        raise CliError(f"none of the runs has values of {EPISODE_REWARD}")
    order = ranked(found)
    if args.json:
        rows = [{"rank": i, **asdict(s), "reached": s.reached} for i, s in enumerate(order, 1)]
        print_json({"window": args.window, "threshold": args.threshold, "runs": rows})
    else:
        print(table(order, args.threshold))
    return 0
