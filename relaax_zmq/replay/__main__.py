"""``python -m relaax_zmq.replay --config app.yaml --shard I``: run one replay server.

Stops on SIGTERM or SIGINT and exits 0 (1 for a bad config or command line); its table
lives in memory only, so a restarted server starts empty (actors refill it, learners'
late priorities for the old keys are skipped); supervisord restarts it after a crash.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import zmq

from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.replay.server import ReplayServer
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config

PROG = "relaax-zmq-replay"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve one replay server.")
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    parser.add_argument("--shard", type=int, default=0, help="replay server index (default 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a replay server until a signal stops it; the exit status."""
    args = parse_args(argv)
    config = load_daemon_config(args.config, PROG)
    stop = StopFlag().install()
    try:
        server = ReplayServer(config, args.shard)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None
    try:
        with serve_metrics(
            config, "replay", server.name, lambda: server.published, index=args.shard
        ):
            server.run(stop)
    except (zmq.ZMQError, AuthError, OSError) as exc:  # a port in use, most likely; or a key
        raise SystemExit(f"{PROG}: replay server {args.shard}: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
