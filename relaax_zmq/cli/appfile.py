"""Read and rewrite an app file as plain data (``new``, ``generate``); the result is checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.cli.common import CliError, load_app


def read_app(path: Path) -> dict[str, Any]:
    """The app file's mapping; CliError when it is missing or not a mapping."""
    if not path.is_file():
        raise CliError(f"no app config at {path} (give one with -c APP.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def write_app(path: Path, data: dict[str, Any], header: str) -> None:
    """Write ``data`` to ``path`` under the comment ``header`` and check it loads.

    A result that does not load is not left behind: the previous text is restored.
    """
    previous = path.read_text() if path.exists() else None
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comment + yaml.safe_dump(data, sort_keys=False))
    try:
        load_app(path)
    except CliError:
        if previous is None:
            path.unlink()
        else:
            path.write_text(previous)
        raise
