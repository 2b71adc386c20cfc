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
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.envs.launch import make_vector_blocks
from relaax_zmq.envs.vector_runner import VectorBlocks
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.fresh_start import FreshStartError, set_aside_previous_run, set_aside_report
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.progress import (
    UPDATE_INTERVAL,
    ProgressDisplay,
    ProgressState,
    add_progress_option,
    mean_of_last,
    open_display,
)
from relaax_zmq.serial import SerialRun, SerialRunner

PROG = "python -m relaax_zmq.runtime.train"


def global_step(config: AppConfig) -> int:
    """Shard 0's global step as the workers last reported it (0 when unknown)."""
    try:
        workers = app_broker_status(config, timeout=1.0)["workers"]
    except Exception:
        return 0
    return reported_global_step(workers)


def reported_global_step(workers: Sequence[dict]) -> int:
    """Shard 0's global step in the workers' entries of a broker status (0 when unknown)."""
    steps = [w.get("stats", {}).get("parameters", {}).get("global_step", 0) for w in workers]
    return max(steps, default=0)


def served_steps(workers: Sequence[dict]) -> int:
    """Environment steps the workers of a broker status have served, all together."""
    return sum(int(w.get("stats", {}).get("steps", 0)) for w in workers)


def checkpoint_files(config: AppConfig) -> int:
    folder = config.parameter_servers.checkpoint.dir
    return len(list(folder.glob("ckpt-*.h5"))) if folder is not None and folder.exists() else 0


def locations(config: AppConfig, log_dir: Path | None, **more: Path) -> list[str]:
    """Lines that say where a run's checkpoints, TensorBoard files and logs are."""
    lines = [
        f"checkpoints: {config.parameter_servers.checkpoint.dir} ({checkpoint_files(config)})",
        f"TensorBoard: tensorboard --logdir {config.metrics.logdir}",
    ]
    lines += [f"{what.replace('_', ' ')}: {where}" for what, where in more.items()]
    if log_dir is not None:
        lines.append(f"daemon logs: {log_dir}")
    return lines


def progress(
    config: AppConfig, runner: VectorBlocks, start: float, window: int
) -> ProgressState:
    """Where the clients of ``runner`` and the app's shards stand."""
    return ProgressState(
        elapsed=time.monotonic() - start,
        steps=runner.steps,
        episodes=len(runner.finished),
        mean_reward=mean_of_last(runner.finished, window),
        global_step=global_step(config),
        checkpoints=checkpoint_files(config),
    )


def target_met(state: ProgressState, target_reward: float | None) -> bool:
    """The mean reward reached ``target_reward`` (never without one)."""
    return target_reward is not None and state.mean_reward >= target_reward


def stop_reason(
    state: ProgressState,
    max_global_step: int | None,
    *,
    target_reward: float | None,
    time_limit: float | None,
    interrupted: bool,
) -> str | None:
    """Why a run stops now (the target first), or None while it goes on."""
    if target_met(state, target_reward):
        return f"target reward {target_reward:g} reached"
    if interrupted:
        return "interrupted"
    if time_limit is not None and state.elapsed >= time_limit:
        return f"time limit of {time_limit:g} s reached"
    if max_global_step is not None and state.global_step >= max_global_step:
        # a run of the app resumes from its checkpoints: say how to start over
        return f"max_global_step {max_global_step:,} reached (--fresh trains from scratch)"
    return None


def train(
    config_path: Path,
    *,
    target_reward: float | None,
    time_limit: float | None,
    window: int,
    display: ProgressDisplay,
) -> bool:
    """Run the app until one of the stops (module docstring); True when the target was met."""
    stack = LocalStack(config_path, collector=True)
    config = stack.config
    display.note(f"starting the daemons of {config_path} ...")
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    reached = False
    try:
        with stack:
            runner = make_vector_blocks(config)
            thread = threading.Thread(target=runner.run, daemon=True)
            start = time.monotonic()
            thread.start()
            while True:
                state = progress(config, runner, start, window)
                reason = stop_reason(
                    state,
                    config.parameter_servers.max_global_step,
                    target_reward=target_reward,
                    time_limit=time_limit,
                    interrupted=interrupted.is_set(),
                )
                if reason is None and not thread.is_alive():
                    reason = "the environment clients finished"
                display.update(state)
                if reason is not None:
                    break
                time.sleep(UPDATE_INTERVAL)
            display.close(reason)
            reached = target_met(state, target_reward)
            runner.stop()
            thread.join(30)
            why = "target reached" if reached else reason
            display.note(f"{why}; stopping the daemons (final checkpoint) ...")
    finally:
        signal.signal(signal.SIGINT, previous)
    for line in locations(config, stack.log_dir):
        display.note(line)
    return reached or target_reward is None


def train_serial(
    config_path: Path,
    *,
    target_reward: float | None,
    time_limit: float | None,
    window: int,
    display: ProgressDisplay,
) -> bool:
    """The app in this process (``relaax_zmq.serial``): the same algorithm, environments
    and update code without daemons, sockets, checkpoints or metrics; True at the target."""
    config = load_config(config_path)
    display.note(f"training {config_path} in serial mode (one process, nothing started) ...")

    def state_of(run: SerialRun) -> ProgressState:
        mean = mean_of_last(run.returns, window)
        return ProgressState(run.seconds, run.steps, len(run.returns), mean, run.global_step, 0)

    run = SerialRunner(config).run(
        target_reward=target_reward,
        window=window,
        time_limit=time_limit,
        on_progress=lambda so_far: display.update(state_of(so_far)),
        progress_interval=UPDATE_INTERVAL,
    )
    display.update(state_of(run))
    reached = target_reward is not None and mean_of_last(run.returns, window) >= target_reward
    stopped = run.stopped or "the clients finished"
    display.close("target reached" if reached else stopped)
    display.note("target reached" if reached else f"stopped: {stopped}")
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
    run = train_serial if args.serial else train
    with open_display(args.progress) as display:
        ok = run(
            args.config,
            target_reward=args.target_reward,
            time_limit=args.time_limit,
            window=args.window,
            display=display,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
