"""``python -m relaax_zmq.worker --config app.yaml [--name NAME] [--index I]``: run one worker.

Its name in the cluster is ``NAME@HOST`` (``runtime.identity``).

Stops on SIGTERM or SIGINT (sends BYE to the broker) and exits 0. When the broker keeps
refusing its name (another live worker holds it) it says so and exits ``EXIT_REFUSED`` (78).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import (
    EXIT_REFUSED,
    StopFlag,
    load_daemon_config,
    parse_daemon_args,
)
from relaax_zmq.runtime.identity import cluster_name
from relaax_zmq.worker.broker_link import WorkerRefused
from relaax_zmq.worker.worker import Worker

PROG = "relaax-zmq-worker"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until a signal stops it; the exit status."""
    args = parse_daemon_args(PROG, "Host agent sessions for the broker.", argv, with_name=True)
    config = load_daemon_config(args.config, PROG)
    stop = StopFlag().install()
    try:
        worker = Worker(config, name=cluster_name(args.name) if args.name else None)
        with serve_metrics(
            config, "workers", worker.name, lambda: worker.published, index=args.index
        ):
            worker.run(stop)
    except (ConfigError, AuthError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None
    except WorkerRefused as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
