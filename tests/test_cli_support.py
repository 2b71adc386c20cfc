"""Helpers of the relaax-zmq CLI tests (no tests here): run the CLI, make apps on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from relaax_zmq.runtime.ports import on_free_ports

CLI = [sys.executable, "-m", "relaax_zmq.cli"]


def cli(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``relaax-zmq ARGS`` as a user runs it (a subprocess), output captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*CLI, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def free_ports(config: dict) -> dict:
    """``config`` (an app mapping) with every endpoint on a free loopback port."""
    on_free_ports(config)
    config["metrics"]["flush_interval"] = 1.0
    return config


def edit_app(path: Path, **sections: dict) -> Path:
    """Rewrite the app file at ``path`` on free ports, with ``sections`` merged in."""
    data = yaml.safe_load(path.read_text())
    free_ports(data)
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def new_bandit_app(folder: Path, **sections: dict) -> Path:
    """``relaax-zmq new`` a bandit app in ``folder`` (on free ports); its app file."""
    made = cli("new", folder)
    assert made.returncode == 0, made.stderr
    return edit_app(folder / "app.yaml", **sections)
