"""relaax-zmq train --algo ALGO --env ENV_ID: train from the command line, no YAML needed.

The app is the bundled preset for the algorithm and environment when there is one,
else the algorithm's defaults fitted to the environment's spaces; --set changes any
key (--set rollout_length=32, --set workers.count=2). The run folder (runs/ENV-ALGO-TIME,
or --run-dir) gets the app file actually used, the checkpoints, the TensorBoard files,
the daemons' logs and the final policy (policy.h5). It runs the app's real daemons on
this machine (--serial: in one process). It stops at --target-reward (the mean of the
last --window episodes), after --total-steps environment steps or --time-limit seconds,
or on Ctrl-C. Exit status 0 when the target was reached (or none was given), 1 otherwise.
Then: relaax-zmq eval RUN_DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relaax_zmq.cli.common import add_json_option, add_set_option, parse_set, print_json
from relaax_zmq.runtime.progress import add_progress_option, open_display

HELP = "train an algorithm on a gymnasium environment (no YAML needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algo", "-a", default="ppo", help="algorithm (ppo)")
    parser.add_argument("--env", "-e", required=True, help="gymnasium id, e.g. CartPole-v1")
    parser.add_argument("--seed", type=int, help="environment seed (session i gets seed + i)")
    parser.add_argument("--total-steps", type=int, help="stop after this many environment steps")
    parser.add_argument("--target-reward", type=float, help="stop when the mean reaches this")
    parser.add_argument("--window", type=int, default=100, help="episodes in the mean (100)")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds")
    parser.add_argument("--workers", type=int, help="worker daemons (the preset's by default)")
    parser.add_argument("--n-envs", type=int, help="environment sessions (the preset's)")
    parser.add_argument("--serial", action="store_true", help="one process, no daemons")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/ENV-ALGO-TIME)")
    add_set_option(parser)
    add_progress_option(parser)
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    from relaax_zmq.api import learn

    overrides = parse_set(args.set)
    stream = sys.stderr if args.json else sys.stdout  # stdout: the JSON object alone
    with open_display(args.progress, stream=stream, total_steps=args.total_steps) as display:
        result = learn(
            args.env,
            args.algo,
            total_steps=args.total_steps,
            target_reward=args.target_reward,
            window=args.window,
            seed=args.seed,
            config=overrides,
            mode="serial" if args.serial else "local",
            n_envs=args.n_envs,
            workers=args.workers,
            time_limit=args.time_limit,
            run_dir=args.run_dir,
            progress=display,
        )
        display.note(result.summary())
        display.note(f"app file: {result.app_file}")
        if result.policy_file is not None:
            display.note(f"policy: {result.policy_file} (relaax-zmq eval {result.run_dir})")
        display.note(f"TensorBoard: tensorboard --logdir {result.metrics_dir}")
    if args.json:
        print_json(
            {
                "run_dir": str(result.run_dir),
                "steps": result.steps,
                "seconds": result.seconds,
                "episodes": result.episodes,
                "final_mean_reward": _finite(result.final_mean_reward),
                "best_mean_reward": _finite(result.best_mean_reward),
                "target_reached": result.target_reached,
                "stopped": result.stopped,
                "policy": None if result.policy_file is None else str(result.policy_file),
            }
        )
    return 0 if result.target_reached or args.target_reward is None else 1


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
