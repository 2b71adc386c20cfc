"""``relaax-zmq config -l | -a PRESET``: list the bundled presets, apply one to an app.

Presets are the package ``relaax_zmq.presets`` (``config -l`` shows where): app
files that train a built-in algorithm on a built-in environment, so every one
listed applies to any app. Applying one replaces each top-level section the preset
has (``environment``, ``algorithm``, ``workers``...) in the app file and keeps the
app's other sections (its own endpoints, say) with their comments; the old file is
kept as ``app.yaml.bak``, and a result that is not a valid config is refused (the
app file is left as it was).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.cli.appfile import read_app, write_app
from relaax_zmq.cli.common import (
    CliError,
    add_app_option,
    add_json_option,
    print_json,
)
from relaax_zmq.config import parse_config
from relaax_zmq.errors import ConfigError
from relaax_zmq.presets import preset_files, presets_dir

HELP = "list the presets (-l) or apply one to the app (-a PRESET)"


def preset_path(name: str) -> Path:
    """The file of preset ``name`` (``cartpole-ppo`` or ``cartpole-ppo.yaml``); CliError else."""
    path = presets_dir() / f"{name.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = ", ".join(p["name"] for p in list_presets())
        raise CliError(f"no preset {name!r}; presets: {known}")
    return path


def description(text: str) -> str:
    """The first paragraph of the comment that opens a preset file, as one line."""
    words = []
    for line in text.splitlines():
        if not line.startswith("#") or not line.lstrip("# ").strip():
            break
        words.append(line.lstrip("#").strip())
    return " ".join(words)


def list_presets() -> list[dict[str, Any]]:
    """Every preset: name, algorithm, environment and its description (``description``)."""
    found = []
    for path in preset_files():
        text = path.read_text()
        data = yaml.safe_load(text) or {}
        env = data.get("environment", {})
        found.append(
            {
                "name": path.stem,
                "algorithm": data.get("algorithm", {}).get("name"),
                "environment": env.get("name") or env.get("run", "gym"),
                "description": description(text),
            }
        )
    return found


def apply_preset(app: Path, name: str) -> Path | None:
    """Apply preset ``name`` to the app file ``app`` (module docstring); the backup's path."""
    path = preset_path(name)
    preset = read_app(path)
    current = read_app(app) if app.exists() else {}
    for section, value in preset.items():
        current[section] = value  # an existing section keeps its place
    try:
        parse_config(current, str(app), app_dir=app.resolve().parent)
    except ConfigError as exc:
        raise CliError(f"preset {name} does not fit {app}: {exc}") from None
    note = f"preset {name} applied by relaax-zmq config (the previous file: {app.name}.bak)"
    return write_app(app, current, note)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("-l", "--list", action="store_true", help="list the presets")
    what.add_argument("-a", "--apply", metavar="PRESET", help="apply this preset to the app")
    add_app_option(parser)
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.list:
        presets = list_presets()
        if args.json:
            print_json({"presets": presets, "folder": str(presets_dir())})
            return 0
        for p in presets:
            print(f"{p['name']:<28} {p['algorithm']:<10} {p['environment']}")
            indent = " " * 4
            print(
                textwrap.fill(
                    p["description"], 100, initial_indent=indent, subsequent_indent=indent
                )
            )
        return 0
    backup = apply_preset(args.config, args.apply)
    kept = f" (previous file: {backup})" if backup else ""
    print(f"applied preset {args.apply} to {args.config}{kept}")
    return 0
