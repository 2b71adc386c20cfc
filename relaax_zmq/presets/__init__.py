"""The bundled presets: app files that train a built-in algorithm on a built-in environment.

``relaax-zmq config -l`` lists them, ``config -a`` applies one to an app, ``new`` starts
from one. They are the repository's ``conf/`` files that need nothing from the
repository (a built-in algorithm by name, a built-in runner): in the source tree
each is a link to its ``conf/`` file (scripts and docs run them from there), in a
built package a copy. ``conf/cartpole-c.yaml`` and ``conf/exchange.yaml`` name
repository files by relative path and stay out.
"""

from __future__ import annotations

from pathlib import Path


def presets_dir() -> Path:
    """The folder of the bundled presets."""
    return Path(__file__).resolve().parent


def preset_files() -> list[Path]:
    """Every bundled preset file, sorted by name."""
    return sorted(presets_dir().glob("*.yaml"))
