"""The ``__main__`` of an indexed daemon: a parameter-server shard, a learner, a replay server.

They share one shape, run here once (``IndexedDaemon.main``):

- the command line is ``--config FILE`` and an index flag (``--shard`` or ``--index``,
  default 0); a bad one exits 2 (argparse);
- the config is loaded and logging set up (``load_daemon_config``: a bad file exits 1);
- SIGTERM and SIGINT set the stop flag (``StopFlag``);
- the daemon is built; one of its build errors (a bad index, a missing section) exits 1
  as ``PROG: message``;
- it runs, its Prometheus endpoint served meanwhile (``serve_metrics``); a socket, key or
  OS error (a port in use, most likely) exits 1 as ``PROG: ROLE INDEX: message``;
- a stop signal ends the run, exit status 0.

Each ``__main__`` says what is its own: its names and how to build its daemon.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config

#: What a build may raise for a bad config or index: exit 1 with its message.
BUILD_ERRORS: tuple[type[Exception], ...] = (ConfigError, ValueError)

#: What a run may raise for a port in use or a bad key: exit 1 naming the daemon.
RUN_ERRORS: tuple[type[Exception], ...] = (zmq.ZMQError, AuthError, OSError)


@dataclass(frozen=True)
class Served:
    """A built daemon, as the runner needs it."""

    name: str  #: its name in its /metrics samples
    read: Callable[[], dict[str, Any] | None]  #: what it published last (None before)
    run: Callable[[StopFlag], None]  #: serve until the flag is set


@dataclass(frozen=True)
class IndexedDaemon:
    """One indexed daemon's command line and names; ``main`` runs it."""

    prog: str  #: the program name in usage, log lines and error exits
    description: str  #: the ``--help`` description
    index_flag: str  #: ``--shard`` or ``--index``
    index_help: str  #: the index flag's ``--help`` line
    metrics: str  #: its kind in the ``prometheus`` section: ``shards``, ``learners``, ...
    role: str  #: what a run error names, before the index: ``shard``, ``learner``, ...
    build: Callable[[AppConfig, int], Served]  #: the daemon for (config, index)
    build_errors: tuple[type[Exception], ...] = BUILD_ERRORS

    def parse_args(self, argv: Sequence[str] | None) -> tuple[Path, int]:
        """The config path and the index from the command line (exits 2 when it is bad)."""
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        parser.add_argument("--config", required=True, type=Path, help="app YAML file")
        parser.add_argument(self.index_flag, type=int, default=0, help=self.index_help)
        args = parser.parse_args(argv)
        return args.config, getattr(args, self.index_flag.removeprefix("--").replace("-", "_"))

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the daemon until a signal (or the daemon itself) stops it; the exit status."""
        path, index = self.parse_args(argv)
        config = load_daemon_config(path, self.prog)
        stop = StopFlag().install()
        try:
            served = self.build(config, index)
        except self.build_errors as exc:
            raise SystemExit(f"{self.prog}: {exc}") from None
        try:
            with serve_metrics(config, self.metrics, served.name, served.read, index=index):
                served.run(stop)
        except RUN_ERRORS as exc:
            raise SystemExit(f"{self.prog}: {self.role} {index}: {exc}") from None
        return 0
