"""What every subcommand shares: the app option, errors, output (plain or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.config.overrides import parse_overrides
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


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.set``: a list for ``parse_set``."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key by its dotted path, the value in YAML "
        "(e.g. --set workers.count=2 --set algorithm.config.gamma=0.98); repeatable",
    )


def parse_set(pairs: Iterable[str]) -> dict[str, Any]:
    """``{dotted key: value}`` of ``--set`` pairs (``relaax_zmq.config.overrides``); a
    CliError (exit status 2) for a pair that is not ``KEY=VALUE`` or not YAML."""
    try:
        return parse_overrides(pairs)
    except ConfigError as exc:
        raise CliError(str(exc), code=2) from None


def load_app(path: Path, overrides: Mapping[str, Any] | None = None) -> AppConfig:
    """The app config at ``path`` with ``overrides`` (``parse_set``) applied.

    With overrides the algorithm's own config is checked too (``check_algorithm``).
    Raises CliError naming the file and the bad key's full path.
    """
    if not path.exists():
        raise CliError(f"no app config at {path} (give one with -c APP.yaml)")
    try:
        config = load_config(path, overrides)
    except ConfigError as exc:
        raise CliError(f"{path}: {exc}") from None
    if overrides:
        check_algorithm(config, str(path))
    return config


def check_algorithm(config: AppConfig, where: str) -> None:
    """The app's algorithm parses ``algorithm.config`` (``check_algorithm_config``): a
    CliError naming the full key, before a daemon would find it too late for ``--set``."""
    from relaax_zmq.runtime.registry import check_algorithm_config

    try:
        check_algorithm_config(config)
    except ConfigError as exc:
        raise CliError(f"{where}: {exc}") from None


def doc_path(name: str) -> Path:
    """The documentation page ``name`` (``config.md``): the installed package's copy
    (``relaax_zmq/docs``), else the source tree's ``docs/``."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "docs", package.parent / "docs"):
        if (folder / name).is_file():
            return folder / name
    return package / "docs" / name


def print_json(data: Any) -> None:
    """``data`` as one line of JSON on stdout."""
    print(json.dumps(data, sort_keys=True, default=str), flush=True)


def interactive() -> bool:
    """True when stdout is a terminal (progress may redraw; otherwise plain lines)."""
    return sys.stdout.isatty()


def warn(message: str) -> None:
    """A message on stderr."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
