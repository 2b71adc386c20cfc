"""``python -m relaax_zmq.learner --config app.yaml [--index I]``: run one learner daemon.

Stops on SIGTERM or SIGINT and exits 0 (1 for a bad config or command line, or an
algorithm without a learner side); supervisord restarts it after a crash (docs/learner.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from relaax_zmq.config import AppConfig
from relaax_zmq.learner.daemon import LearnerDaemon
from relaax_zmq.runtime.daemon_main import IndexedDaemon, Served

PROG = "relaax-zmq-learner"


def build(config: AppConfig, index: int) -> Served:
    """Learner ``index`` of the app (``ConfigError`` for an algorithm without a learner)."""
    daemon = LearnerDaemon(config, index)
    return Served(daemon.name, lambda: daemon.published, daemon.run)


DAEMON = IndexedDaemon(
    PROG,
    "Serve one central learner.",
    "--index",
    "learner index (default 0)",
    metrics="learners",
    role="learner",
    build=build,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a learner until a signal stops it; the exit status."""
    return DAEMON.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
