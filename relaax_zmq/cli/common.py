"""What every subcommand shares: the app option, errors, output (plain or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.errors import ConfigError

#: The program name in messages.
PROG = "relaax-zmq"
#: The app file ``-c`` defaults to (in the current folder).
DEFAULT_APP = Path("app.yaml")


class CliError(Exception):
    """A failure to report in one message; the command exits with ``code`` (1)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_app_option(parser: argparse.ArgumentParser) -> None:
    """``-c/--config APP.yaml`` (default ``./app.yaml``)."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=DEFAULT_APP,
        metavar="APP.yaml",
        help="the app's config file (default: ./app.yaml)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: print the result as one JSON object instead of text."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def load_app(path: Path) -> AppConfig:
    """The app config at ``path``; ``CliError`` naming the file and the bad key."""
    if not path.exists():
        raise CliError(f"no app config at {path} (give one with -c APP.yaml)")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(f"{path}: {exc}") from None


def print_json(data: Any) -> None:
    """``data`` as one line of JSON on stdout."""
    print(json.dumps(data, sort_keys=True, default=str), flush=True)


def interactive() -> bool:
    """True when stdout is a terminal (progress may redraw; otherwise plain lines)."""
    return sys.stdout.isatty()


def warn(message: str) -> None:
    """A message on stderr."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
