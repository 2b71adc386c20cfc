"""Blocks: environment steps per second with vectorised blocks as threads or as processes.

Run: ``python -m bench.blocks [--case cartpole-da3c] [--seconds 12] [--repeats 2]``.

The preset ``conf/<case>.yaml`` (several ``environment.blocks``) trains through the real
daemons (``LocalStack``) for ``--seconds`` after its clients start, once with its blocks as
threads of this process (``make_vector_blocks``: the baseline, one interpreter lock for all
blocks) and once as child processes (``BlockProcesses``), alternating, ``--repeats`` times
each, a fresh app every run. Figures: environment steps per second over the run (median
of the repeats), and the mean return of the last 100 episodes at its end. The last line
printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.learning import rolling_mean, write_case_app
from bench.timing import table
from relaax_zmq.config import load_config
from relaax_zmq.envs.block_processes import BlockProcesses
from relaax_zmq.envs.launch import make_vector_blocks
from relaax_zmq.local import LocalStack

MODES = ("threads", "processes")


def run(case: str, mode: str, seconds: float, seed: int) -> dict[str, float]:
    """One run of ``case`` for ``seconds`` with its blocks as ``mode``."""
    with tempfile.TemporaryDirectory(prefix=f"bench-blocks-{case}-") as tmp:
        path = write_case_app(case, seed, Path(tmp))
        with LocalStack(path):
            config = load_config(path)
            count = len(config.environment.block_sessions())
            if count < 2:
                raise SystemExit(f"{case}: expected several environment.blocks, got {count}")
            blocks = make_vector_blocks(config) if mode == "threads" else BlockProcesses(path, count)
            thread = threading.Thread(target=blocks.run, daemon=True)
            start = time.monotonic()
            thread.start()
            time.sleep(seconds)
            steps, elapsed = blocks.steps, time.monotonic() - start
            mean = rolling_mean(blocks.finished, 100)
            blocks.stop()
            thread.join(30)
    return {"steps_per_s": steps / elapsed, "mean": mean}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blocks")
    parser.add_argument("--case", default="cartpole-da3c", help="a conf/ preset with blocks")
    parser.add_argument("--seconds", type=float, default=12.0, help="training seconds a run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    args = parser.parse_args(argv)
    found: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:
            figures = run(args.case, mode, args.seconds, seed=repeat)
            found[mode].append(figures)
            print(
                f"{mode} run {repeat}: {figures['steps_per_s']:,.0f} steps/s, "
                f"mean {figures['mean']:.1f}",
                flush=True,
            )
    rate = {mode: statistics.median(f["steps_per_s"] for f in runs) for mode, runs in found.items()}
    rows = [["blocks as", "steps/s (median)", "per run"]]
    for mode in MODES:
        per_run = ", ".join(f"{f['steps_per_s']:,.0f}" for f in found[mode])
        rows.append([mode, f"{rate[mode]:,.0f}", per_run])
    ratio = rate["processes"] / rate["threads"]
    print(f"\n{args.case}, {args.seconds:g} s a run, {args.repeats} runs each")
    print(table(rows))
    print(f"processes / threads: {ratio:.2f}x")
    result: dict[str, Any] = {
        "case": args.case,
        "seconds": args.seconds,
        "threads_steps_per_s": round(rate["threads"]),
        "processes_steps_per_s": round(rate["processes"]),
        "ratio": round(ratio, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
