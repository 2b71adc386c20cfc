"""``relaax-zmq plot [RUN ...] -o FILE``: learning curves of one or several runs, side by side.

A RUN is a metrics folder (``metrics.logdir``, holding TensorBoard event files), a
folder above several of them, or an app file (its ``metrics.logdir``); default: the
app of ``-c``. Writes ``FILE.png`` (one panel per tag, one line per run with a legend,
smoothed over the last ``--smooth`` episodes) and ``FILE.csv`` (every value: run, tag, episodes,
env_steps, seconds, value, smoothed, step, wall time). ``--x`` picks the x axis:
environment steps (default), wall-clock seconds since the run started, or episodes;
runs that report no environment steps are plotted over episodes (with a warning).
``--tag`` picks the metrics (default ``client/episode_reward``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relaax_zmq.cli.common import (
    CliError,
    add_app_option,
    add_json_option,
    print_json,
    warn,
)
from relaax_zmq.cli.curves import X_AXES, load_curves, resolve_runs, save_curves, usable_axis
from relaax_zmq.cli.events import EPISODE_REWARD

HELP = "plot learning curves of runs (PNG and CSV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="*", type=Path, metavar="RUN", help="metrics folders or app files"
    )
    add_app_option(parser)
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("learning-curves"), help="FILE (.png and .csv)"
    )
    parser.add_argument(
        "--tag", action="append", help=f"metric tag (default {EPISODE_REWARD}); repeatable"
    )
    parser.add_argument(
        "--x",
        choices=X_AXES,
        default=X_AXES[0],
        help="x axis: environment steps, wall-clock seconds or episodes (steps)",
    )
    parser.add_argument("--smooth", type=int, default=20, help="values in the moving mean (20)")
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.smooth < 1:
        raise CliError(f"--smooth expects a number >= 1, got {args.smooth}", code=2)
    runs = resolve_runs(args.runs, args.config)
    tags = args.tag or [EPISODE_REWARD]
    curves = load_curves(runs, tags)
    if not curves:
        raise CliError(f"none of the runs has values of {', '.join(tags)}")
    x = usable_axis(curves, args.x)
    if x != args.x:
        uncounted = sorted({c.run for c in curves if c.steps is None})
        warn(f"plot: {', '.join(uncounted)} report no environment steps; x axis: {x}")
    png, table = save_curves(curves, args.output, x=x, smooth=args.smooth)
    if args.json:
        print_json({"png": str(png), "csv": str(table), "x": x, "runs": [str(r) for r in runs]})
    else:
        print(f"learning curves of {len(runs)} run(s) over {x}: {png} (numbers: {table})")
    return 0
