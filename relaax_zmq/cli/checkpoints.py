"""``relaax-zmq checkpoints list|show|export``: the app's stored checkpoints.

- ``list``: every stored global step in every location (disk folder, S3 prefix):
  shards present, bytes, complete or not;
- ``show [STEP]``: one complete step (default: the newest): each shard's file,
  score, creation time, counters, optimizer and extras arrays;
- ``export [STEP] -o FILE.npz``: the whole flat parameter vector of that step (all
  shards joined) with its step, algorithm and score, for numpy.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import numpy as np

from relaax_zmq.checkpoint.weights import assemble, shard_checkpoints, stored
from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json

HELP = "list, show or export the app's checkpoints"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show", "export"), help="what to do")
    parser.add_argument("step", nargs="?", type=int, help="global step (default: the newest)")
    add_app_option(parser)
    add_json_option(parser)
    parser.add_argument("-o", "--output", type=Path, help="export: the .npz file to write")


def run(args: argparse.Namespace) -> int:
    config = load_app(args.config)
    if args.action == "list":
        rows = stored(config)
        if args.json:
            print_json({"checkpoints": rows})
        elif not rows:
            print("no checkpoints stored")
        for row in [] if args.json else rows:
            state = "complete" if row["complete"] else f"shards {row['shards']} only"
            print(f"step {row['step']:>12,}  {state:<16} {row['bytes']:>12,} B  {row['location']}")
        return 0
    if args.action == "show":
        parts = shard_checkpoints(config, args.step)
        shown = [
            {
                "shard": p.shard,
                "step": p.global_step,
                "algorithm": p.algorithm,
                "offset": p.offset,
                "params": int(p.params.size),
                "param_count": p.param_count,
                "score": p.score,
                "created": datetime.datetime.fromtimestamp(p.created).isoformat(timespec="seconds"),
                "counters": p.counters,
                "optimizer": {k: list(v.shape) for k, v in p.optimizer.items()},
                "extras": {k: list(v.shape) for k, v in p.extras.items()},
            }
            for p in parts
        ]
        if args.json:
            print_json({"step": parts[0].global_step, "shards": shown})
            return 0
        print(f"step {parts[0].global_step:,} of {parts[0].algorithm}, {len(parts)} shard(s)")
        for s in shown:
            score = "-" if s["score"] is None else f"{s['score']:g}"
            print(
                f"  shard {s['shard']}: params [{s['offset']}, {s['offset'] + s['params']}) of "
                f"{s['param_count']}, score {score}, created {s['created']}, counters {s['counters']}"
            )
        return 0
    if args.output is None:
        raise CliError("checkpoints export: give the file to write with -o FILE.npz", code=2)
    weights = assemble(config, args.step)
    np.savez(
        args.output,
        params=weights.params,
        step=np.int64(weights.step),
        algorithm=np.str_(weights.algorithm),
        score=np.float64(np.nan if weights.score is None else weights.score),
        **{f"extras_{k}": v for k, v in weights.extras.items()},
    )
    out = (
        args.output
        if args.output.suffix == ".npz"
        else args.output.with_name(args.output.name + ".npz")
    )
    if args.json:
        print_json({"file": str(out), "step": weights.step, "params": int(weights.params.size)})
    else:
        print(f"step {weights.step:,}: {weights.params.size:,} parameters written to {out}")
    return 0
