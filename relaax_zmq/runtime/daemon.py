"""What every daemon shares: command-line config loading, logging, and stopping on a signal.

Daemons run in the foreground, log to stderr and stop cleanly on SIGTERM or
SIGINT; restarts are supervisord's job.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.errors import ConfigError

#: Exit status of a daemon its peers refused for good, a configuration error (``EX_CONFIG``):
#: a worker whose name another live worker holds. supervisord leaves it down (``exitcodes``).
EXIT_REFUSED = 78


class StopFlag:
    """Set by SIGTERM/SIGINT (or by ``set``); daemon loops poll ``is_set`` between waits."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: int | None = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, signum: int | None = None) -> None:
        self.signal = signum
        self._event.set()

    def install(self) -> StopFlag:
        """Route SIGTERM and SIGINT to this flag (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, _frame: self.set(number))
        return self


def parse_daemon_args(
    prog: str, description: str, argv: Sequence[str] | None, *, with_name: bool = False
) -> argparse.Namespace:
    """``--config FILE`` (required) and, for workers, ``--name NAME`` and ``--index I``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    if with_name:
        parser.add_argument(
            "--name",
            default=None,
            help="name on this host, made unique in the cluster as NAME@HOST "
            "(default: worker-PID@HOST)",
        )
        parser.add_argument(
            "--index",
            type=int,
            default=0,
            help="the worker's number on its host (its Prometheus port: prometheus.workers + I)",
        )
    return parser.parse_args(argv)


def load_daemon_config(path: Path, prog: str) -> AppConfig:
    """Load the app config and set up logging; on a bad config exit with the error (status 1)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise SystemExit(f"{prog}: {path}: {exc}") from None
    logging.basicConfig(
        level=config.log_level,
        format=f"%(asctime)s {prog}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    return config
