"""``python -m relaax_zmq.ps --config app.yaml --shard I``: run one parameter-server shard.

Restores the shard's newest valid checkpoint (``parameter_servers.checkpoint``),
saves when due and on the way out. Stops on SIGTERM or SIGINT, or by itself at
``parameter_servers.max_global_step``, and exits 0 (1 for a bad config or
command line).
"""

from __future__ import annotations

from collections.abc import Sequence

from relaax_zmq.checkpoint import CheckpointError
from relaax_zmq.config import AppConfig
from relaax_zmq.ps.checkpoints import ManagedCheckpoints
from relaax_zmq.ps.shard import Shard
from relaax_zmq.runtime.daemon_main import BUILD_ERRORS, IndexedDaemon, Served

PROG = "relaax-zmq-ps"


def build(config: AppConfig, index: int) -> Served:
    """Shard ``index`` of the app with its checkpoints (``CheckpointError`` for bad ones)."""
    shard = Shard(config, index)  # checks the shard index first
    shard.checkpoints = ManagedCheckpoints.from_config(config, index)
    return Served(f"shard-{index}", shard.stats, shard.run)


DAEMON = IndexedDaemon(
    PROG,
    "Serve one parameter-server shard.",
    "--shard",
    "shard index (default 0)",
    metrics="shards",
    role="shard",
    build=build,
    build_errors=(*BUILD_ERRORS, CheckpointError),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a shard until a signal or the global step limit stops it; the exit status."""
    return DAEMON.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
