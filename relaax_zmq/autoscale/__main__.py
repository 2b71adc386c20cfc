"""``python -m relaax_zmq.autoscale --config app.yaml [--min N] [--max M]``: run the autoscaler.

Runs between min and max workers on this host as its children; stops them all on SIGTERM or
SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from relaax_zmq.autoscale.autoscaler import Autoscaler
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config
from relaax_zmq.runtime.identity import cluster_name

PROG = "relaax-zmq-autoscale"


def add_bounds(parser: argparse.ArgumentParser) -> None:
    """``--min`` and ``--max`` (the ``autoscale`` section's by default)."""
    parser.add_argument("--min", type=int, default=None, help="fewest workers (autoscale.min)")
    parser.add_argument("--max", type=int, default=None, help="most workers (autoscale.max)")


def serve(config_path: Path, minimum: int | None, maximum: int | None, prog: str) -> int:
    """Load the app, run the autoscaler until a signal; the exit status."""
    config = load_daemon_config(config_path, prog)
    try:
        autoscaler = Autoscaler(config, config_path, minimum=minimum, maximum=maximum)
    except ValueError as exc:
        raise SystemExit(f"{prog}: {exc}") from None
    stop = StopFlag().install()
    with serve_metrics(config, "autoscaler", cluster_name("autoscaler"), autoscaler.figures):
        autoscaler.run(stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Scale this host's workers.")
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    add_bounds(parser)
    args = parser.parse_args(argv)
    return serve(args.config, args.min, args.max, PROG)


if __name__ == "__main__":
    raise SystemExit(main())
