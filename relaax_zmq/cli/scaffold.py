"""Copying built-in code into an app to customise it, and the environments it can copy.

``vendor`` copies a module or a package and rewrites its relative imports that
point outside the copy into absolute ones (``from ..common.agent import X`` in
``algorithms/da3c`` becomes ``from relaax_zmq.algorithms.common.agent import X``),
so the copy imports as a file or folder of the app. ``ENV_TEMPLATES`` are the
environments ``new``/``generate -e`` copy (a gymnasium id is fitted by
``relaax_zmq.config.fitting``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaax_zmq.cli.common import CliError
from relaax_zmq.runtime.registry import algorithm_entry, algorithm_names

_RELATIVE = re.compile(r"^(\s*from\s+)(\.+)([\w.]*)(\s+import\b)", re.MULTILINE)


@dataclass(frozen=True)
class EnvTemplate:
    """A built-in environment an app can copy: where it is, what to name, what it needs."""

    module: str
    cls: str
    vectorizable: bool  # a gymnasium.Env (a vectorized client can batch it)
    shape: tuple[int, ...]
    actions: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    doc: str = ""

    @property
    def file_name(self) -> str:
        return self.module.rpartition(".")[2] + ".py"


ENV_TEMPLATES = {
    "bandit": EnvTemplate(
        "relaax_zmq.envs.bandit",
        "BanditEnv",
        True,
        (1,),
        4,
        {"episode_length": 100},
        "RELAAX's 4-armed bandit (a gymnasium.Env)",
    ),
    "template": EnvTemplate(
        "relaax_zmq.envs.template",
        "WalkRunner",
        False,
        (1,),
        2,
        {"size": 5},
        "a runner template (TrainingBase): a walk to a goal",
    ),
}


def _absolute(package: str, level: int, rest: str) -> str:
    base = package.split(".")
    if level > len(base):
        raise CliError(f"cannot rewrite a relative import of level {level} in {package}")
    parts = base[: len(base) - level + 1]
    return ".".join(parts + ([rest] if rest else []))


def rewrite_imports(source: str, package: str, depth: int) -> str:
    """``source`` of a module of package ``package`` with imports above ``depth`` made absolute.

    ``depth`` is how many package levels the copy keeps above this module (0: a
    single module; 1: a module at the top of a copied package).
    """

    def replace(match: re.Match) -> str:
        level = len(match.group(2))
        if level <= depth:
            return match.group(0)
        target = _absolute(package, level, match.group(3))
        return f"{match.group(1)}{target}{match.group(4)}"

    return _RELATIVE.sub(replace, source)


def vendor_module(module: str, target: Path) -> Path:
    """Copy module ``module`` (dotted name) to the file ``target``; imports made absolute."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise CliError(f"module {module} is not installed")
    package = module.rpartition(".")[0]
    text = Path(spec.origin).read_text()
    target.write_text(rewrite_imports(text, package, 0))
    return target


def vendor_package(package: str, target: Path) -> Path:
    """Copy package ``package`` to the folder ``target``; imports leaving it made absolute."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CliError(f"package {package} is not installed")
    source = Path(next(iter(spec.submodule_search_locations)))
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(source)
        inner = relative.parent.parts
        owner = ".".join([package, *inner])
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rewrite_imports(path.read_text(), owner, len(inner) + 1))
    shutil.rmtree(target / "__pycache__", ignore_errors=True)
    return target


def algorithm_package(name: str) -> str:
    """The dotted package of installed algorithm ``name``; CliError for an unknown one."""
    entry = algorithm_entry(name)
    if entry is None:
        raise CliError(f"unknown algorithm {name!r}; installed: {', '.join(algorithm_names())}")
    return entry.module
