"""``relaax-zmq config -l | -a PRESET``: list the shipped presets, apply one to an app.

Presets are the app files of conf/ (shipped in the package as
``relaax_zmq/cli/presets``). Applying one replaces each top-level section the preset
has (``environment``, ``algorithm``, ``workers``...) in the app file and keeps the
app's other sections (its own endpoints, say); the old file is kept as
``app.yaml.bak``, and a result that is not a valid config is refused (the app file
is left as it was).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.cli.common import (
    CliError,
    add_app_option,
    add_json_option,
    load_app,
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


def list_presets() -> list[dict[str, Any]]:
    """Every preset: name, algorithm, environment and the first line of its comment."""
    found = []
    for path in preset_files():
        text = path.read_text()
        data = yaml.safe_load(text) or {}
        env = data.get("environment", {})
        comment = next(
            (line.lstrip("# ") for line in text.splitlines() if line.startswith("#")), ""
        )
        found.append(
            {
                "name": path.stem,
                "algorithm": data.get("algorithm", {}).get("name")
                or str(data.get("algorithm", {}).get("path")),
                "environment": env.get("name") or env.get("run", "gym"),
                "description": comment,
            }
        )
    return found


def apply_preset(app: Path, name: str) -> Path:
    """Apply preset ``name`` to the app file ``app`` (module docstring); the backup's path."""
    preset = yaml.safe_load(preset_path(name).read_text()) or {}
    current = yaml.safe_load(app.read_text()) if app.exists() else {}
    if not isinstance(current, dict):
        raise CliError(f"{app}: expected a mapping of sections, got {type(current).__name__}")
    merged = {**current, **preset}
    try:
        parse_config(merged, str(app), app_dir=app.resolve().parent)
    except ConfigError as exc:
        raise CliError(f"preset {name} does not fit {app}: {exc}") from None
    backup = app.with_name(app.name + ".bak")
    if app.exists():
        backup.write_text(app.read_text())
    header = f"# preset {name} applied by relaax-zmq config (the previous file: {backup.name})\n"
    app.write_text(header + yaml.safe_dump(merged, sort_keys=False))
    load_app(app)
    return backup


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
            print(f"{p['name']:<30} {p['algorithm']:<10} {p['environment']:<26} {p['description']}")
        return 0
    backup = apply_preset(args.config, args.apply)
    print(f"applied preset {args.apply} to {args.config} (previous file: {backup})")
    return 0
