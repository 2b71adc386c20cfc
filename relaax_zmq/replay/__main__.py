"""``python -m relaax_zmq.replay --config app.yaml --shard I``: run one replay server.

Stops on SIGTERM or SIGINT and exits 0 (1 for a bad config or command line); its table
lives in memory only, so a restarted server starts empty (actors refill it, learners'
late priorities for the old keys are skipped); supervisord restarts it after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence

from relaax_zmq.config import AppConfig
from relaax_zmq.replay.server import ReplayServer
from relaax_zmq.runtime.daemon_main import IndexedDaemon, Served

PROG = "relaax-zmq-replay"


def build(config: AppConfig, shard: int) -> Served:
    """Replay server ``shard`` of the app."""
    server = ReplayServer(config, shard)
    return Served(server.name, lambda: server.published, server.run)


DAEMON = IndexedDaemon(
    PROG,
    "Serve one replay server.",
    "--shard",
    "replay server index (default 0)",
    metrics="replay",
    role="replay server",
    build=build,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a replay server until a signal stops it; the exit status."""
    return DAEMON.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
