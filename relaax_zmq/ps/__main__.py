"""``python -m relaax_zmq.ps --config app.yaml --shard I``: run one parameter-server shard.

Restores the shard's newest valid checkpoint (``parameter_servers.checkpoint``),
saves when due and on the way out. Stops on SIGTERM or SIGINT, or by itself at
``parameter_servers.max_global_step``, and exits 0 (1 for a bad config or
command line).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import zmq

from relaax_zmq.checkpoint import CheckpointError
from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.ps.checkpoints import ManagedCheckpoints
from relaax_zmq.ps.shard import Shard
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config

PROG = "relaax-zmq-ps"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve one parameter-server shard.")
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    parser.add_argument("--shard", type=int, default=0, help="shard index (default 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a shard until a signal or the global step limit stops it; the exit status."""
    args = parse_args(argv)
    config = load_daemon_config(args.config, PROG)
    stop = StopFlag().install()
    try:
        shard = Shard(config, args.shard)  # checks the shard index first
        shard.checkpoints = ManagedCheckpoints.from_config(config, args.shard)
    except (ConfigError, CheckpointError, ValueError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None
    try:
        with serve_metrics(config, "shards", f"shard-{args.shard}", shard.stats, index=args.shard):
            shard.run(stop)
    except (zmq.ZMQError, AuthError, OSError) as exc:  # a port in use, most likely; or a key
        raise SystemExit(f"{PROG}: shard {args.shard}: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
