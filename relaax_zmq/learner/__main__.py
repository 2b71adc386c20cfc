"""``python -m relaax_zmq.learner --config app.yaml [--index I]``: run one learner daemon.

Stops on SIGTERM or SIGINT and exits 0 (1 for a bad config or command line, or an
algorithm without a learner side); supervisord restarts it after a crash (docs/learner.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import zmq

from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.learner.daemon import LearnerDaemon
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config

PROG = "relaax-zmq-learner"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve one central learner.")
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    parser.add_argument("--index", type=int, default=0, help="learner index (default 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a learner until a signal stops it; the exit status."""
    args = parse_args(argv)
    config = load_daemon_config(args.config, PROG)
    stop = StopFlag().install()
    try:
        daemon = LearnerDaemon(config, args.index)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None
    try:
        with serve_metrics(
            config, "learners", daemon.name, lambda: daemon.published, index=args.index
        ):
            daemon.run(stop)
    except (zmq.ZMQError, AuthError, OSError) as exc:
        raise SystemExit(f"{PROG}: learner {args.index}: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
