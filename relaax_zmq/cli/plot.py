"""``relaax-zmq plot [RUN ...] -o FILE``: learning curves of one or several runs, side by side.

A RUN is a metrics folder (``metrics.logdir``, holding TensorBoard event files), a
folder above several of them, or an app file (its ``metrics.logdir``); default: the
app of ``-c``. Writes ``FILE.png`` (one panel per tag, one line per run, smoothed over
``--smooth`` values) and ``FILE.csv`` (every value: run, tag, index, step, value,
smoothed, wall time). ``--tag`` picks the metrics (default ``client/episode_reward``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json
from relaax_zmq.cli.curves import write_curves
from relaax_zmq.cli.events import EPISODE_REWARD, runs_under

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
    parser.add_argument("--smooth", type=int, default=20, help="values in the moving mean (20)")
    add_json_option(parser)


def resolve_runs(items: list[Path], default_app: Path) -> list[Path]:
    """Run folders (those holding event files) named by ``items`` (module docstring)."""
    found: list[Path] = []
    for item in items or [default_app]:
        if item.is_file():
            item = load_app(item).metrics.logdir
        if not item.exists():
            raise CliError(f"no such run folder or app file: {item}")
        runs = runs_under(item)
        if not runs:
            raise CliError(f"no TensorBoard event files under {item}")
        found += runs
    return list(dict.fromkeys(found))


def run(args: argparse.Namespace) -> int:
    if args.smooth < 1:
        raise CliError(f"--smooth expects a number >= 1, got {args.smooth}", code=2)
    runs = resolve_runs(args.runs, args.config)
    tags = args.tag or [EPISODE_REWARD]
    written = write_curves(runs, args.output, tags=tags, smooth=args.smooth)
    if written is None:
        raise CliError(f"none of the runs has values of {', '.join(tags)}")
    png, table = written
    if args.json:
        print_json({"png": str(png), "csv": str(table), "runs": [str(r) for r in runs]})
    else:
        print(f"learning curves of {len(runs)} run(s): {png} (numbers: {table})")
    return 0
