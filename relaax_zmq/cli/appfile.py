"""Read and rewrite an app file keeping the user's comments and key order (ruamel.yaml).

``new``, ``generate`` and ``config -a`` edit app files through here: ``read_app``
gives the file's mapping as a round-trip one (edit it in place: sections and keys
keep their comments and places), ``write_app`` writes it back under a note of
what changed, keeps the previous file as ``<name>.bak`` and checks the result
loads (a result that does not is not left behind).
"""

from __future__ import annotations

from collections.abc import Mapping
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from relaax_zmq.cli.common import CliError, load_app

#: The first lines of an app file written here start so (replaced on the next write).
NOTE = "# relaax-zmq: "


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and scalar styles survive
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap the user's long lines
    yaml.default_flow_style = None  # new leaf lists and mappings inline, as the presets write them
    yaml.preserve_quotes = True
    return yaml


def read_app(path: Path) -> Any:
    """The app file's mapping (round-trip); CliError when it is missing or not a mapping."""
    if not path.is_file():
        raise CliError(f"no app config at {path} (give one with -c APP.yaml)")
    try:
        data = _yaml().load(path.read_text())
    except YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise CliError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def backup_path(path: Path) -> Path:
    """Where ``write_app`` keeps the previous version of ``path``: ``<name>.bak``."""
    return path.with_name(path.name + ".bak")


def write_app(path: Path, data: Mapping[str, Any], note: str) -> Path | None:
    """Write ``data`` to ``path`` under the comment ``note`` and check it loads.

    ``data`` is a mapping from ``read_app`` (its comments are kept) or plain data.
    The note's lines replace those of an earlier write; an existing file is kept
    as ``backup_path(path)``, whose path is returned (None for a new file). A
    result that does not load is not left behind: the previous text is restored.
    """
    previous = path.read_text() if path.exists() else None
    out = StringIO()
    _yaml().dump(data, out)
    body = out.getvalue()
    lines = body.splitlines(keepends=True)
    while lines and lines[0].startswith(NOTE):  # an earlier write's note
        lines.pop(0)
    header = "".join(f"{NOTE}{line}\n" for line in note.splitlines())
    backup = None
    if previous is not None:
        backup = backup_path(path)
        backup.write_text(previous)
    path.write_text(header + "".join(lines))
    try:
        load_app(path)
    except CliError:
        if previous is None:
            path.unlink()
        else:
            path.write_text(previous)
        raise
    return backup
