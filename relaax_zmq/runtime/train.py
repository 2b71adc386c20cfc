"""``python -m relaax_zmq.runtime.train --config app.yaml``: train an app on this machine, with live progress.

Starts the app's daemons (``LocalStack``: shards, broker, workers, metrics collector),
runs its environment clients in this process as one vectorised client, shows its
progress (elapsed time, environment steps and steps per second, shard 0's global step,
the mean reward of the last ``--window`` episodes, checkpoints written; ``--progress``:
a live line on a terminal, plain lines otherwise, or JSON lines, ``runtime.progress``)
and stops when the mean reaches ``--target-reward``, after
``--time-limit`` seconds, when the shards reach ``max_global_step``, or on Ctrl-C;
the shards save a final checkpoint on the way out. Then it prints where the
checkpoints and the TensorBoard files are. Exit status 0 when the target was
reached (or none was given), 1 otherwise. ``--serial`` runs the same app in this
process instead (``relaax_zmq.serial``: no daemons, for debugging an algorithm). The shards resume from the app's
checkpoints; ``--fresh`` sets the earlier run aside first (``relaax_zmq.runtime.fresh_start``)
and starts over.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from relaax_zmq.api.training import train_app
from relaax_zmq.config import load_config
from relaax_zmq.runtime.fresh_start import FreshStartError, set_aside_previous_run, set_aside_report
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.progress import (
    UPDATE_INTERVAL,
    ProgressDisplay,
    add_progress_option,
    open_display,
)
from relaax_zmq.runtime.watching import locations

PROG = "python -m relaax_zmq.runtime.train"


def train(
    config_path: Path,
    *,
    target_reward: float | None,
    time_limit: float | None,
    window: int,
    display: ProgressDisplay,
    serial: bool = False,
) -> bool:
    """Run the app until one of the stops (module docstring); True when the target was met
    or none was given."""
    if serial:
        display.note(f"training {config_path} in serial mode (one process, nothing started) ...")
    else:
        display.note(f"starting the daemons of {config_path} ...")
    run = train_app(
        config_path,
        serial=serial,
        target_reward=target_reward,
        time_limit=time_limit,
        window=window,
        progress=display,
        progress_interval=UPDATE_INTERVAL,
    )
    reached = run.target_reached
    display.note("target reached" if reached else f"stopped: {run.stopped}")
    if not serial:
        config = load_config(config_path)
        for line in locations(config, LocalStack(config_path).log_dir):
            display.note(line)
    return reached or target_reward is None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Train an app on this machine.")
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    parser.add_argument("--target-reward", type=float, default=None, help="stop at this mean")
    parser.add_argument("--window", type=int, default=100, help="episodes in the mean (100)")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds at most")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="one process, nothing started: the algorithm, environments and updates in serial mode",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="set the earlier run aside (folders renamed, S3 checkpoints moved), start over",
    )
    add_progress_option(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fresh:
        try:
            moves = set_aside_previous_run(load_config(args.config))
        except FreshStartError as exc:
            print(f"{PROG} --fresh: {exc}", file=sys.stderr)
            return 2
        print(set_aside_report(moves), flush=True)
    with open_display(args.progress) as display:
        ok = train(
            args.config,
            target_reward=args.target_reward,
            time_limit=args.time_limit,
            window=args.window,
            display=display,
            serial=args.serial,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
