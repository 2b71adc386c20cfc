"""Find algorithms: installed ones by name (entry points), app-local ones by folder.

An installed algorithm is an entry point of the ``relaax_zmq.algorithms`` group whose
object is an ``Algorithm`` (``relaax_zmq.core``); the built-ins register themselves so
in pyproject.toml and a third-party package does the same in its own. An app-local
algorithm (``algorithm.path``) is a package folder whose ``__init__`` defines
``ALGORITHM``.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.core import (
    Agent,
    AgentContext,
    Algorithm,
    ParameterServerContext,
    ParameterServerSpec,
)
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.imports import import_path

if TYPE_CHECKING:
    from relaax_zmq.config import AppConfig

#: The entry-point group installed algorithms register in.
ENTRY_POINT_GROUP = "relaax_zmq.algorithms"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def algorithm_names() -> list[str]:
    """Names of the installed algorithms, sorted."""
    return sorted(_entry_points())


def algorithm_entry(name: str) -> EntryPoint | None:
    """The entry point of installed algorithm ``name`` (its ``module`` is the package)."""
    return _entry_points().get(name)


def load_algorithm(config: AlgorithmConfig) -> Algorithm:
    """The declaration of ``algorithm.name`` (an entry point) or ``algorithm.path``."""
    if config.name is not None:
        entry = _entry_points().get(config.name)
        if entry is None:
            choices = ", ".join(algorithm_names())
            raise ConfigError("algorithm.name", f"expected one of {choices}, got {config.name!r}")
        return _checked(entry.load(), "algorithm.name", entry.value)
    assert config.path is not None  # AlgorithmConfig guarantees one of the two
    return load_folder(config.path)


def load_folder(folder: Path) -> Algorithm:
    """The ``ALGORITHM`` of the package in ``folder`` (``algorithm.path``)."""
    if not (folder / "__init__.py").is_file():
        raise ConfigError(
            "algorithm.path", f"expected a package folder with {folder / '__init__.py'}"
        )
    package = import_path(folder, "relaax_app_algorithm")
    return _checked(getattr(package, "ALGORITHM", None), "algorithm.path", f"{folder}/__init__.py")


def _checked(found: object, where: str, source: str) -> Algorithm:
    if not isinstance(found, Algorithm):
        got = type(found).__name__ if found is not None else "nothing"
        raise ConfigError(
            where, f"expected ALGORITHM = relaax_zmq.core.Algorithm(...) in {source}, got {got}"
        )
    return found


def experience_target(config: AlgorithmConfig) -> str | None:
    """Where the algorithm's actors ship experience: ``learner`` (unrolls to the learner
    daemons), ``replay`` (transitions to the replay servers) or None (its agents learn
    themselves)."""
    learner = load_algorithm(config).learner
    if learner is None:
        return None
    return "replay" if getattr(learner, "source", "unrolls") == "replay" else "learner"


def load_agent(config: AlgorithmConfig, context: AgentContext) -> Agent:
    """The configured algorithm's agent for ``context``."""
    return load_algorithm(config).make_agent(context)


def load_parameter_server(
    config: AlgorithmConfig, context: ParameterServerContext
) -> ParameterServerSpec | None:
    """The configured algorithm's parameter-server spec; None when it needs no shards."""
    return load_algorithm(config).make_parameter_server(config.config, context)


def check_algorithm_config(config: AppConfig) -> None:
    """The app's algorithm parses its ``algorithm.config`` (unknown keys, bad values): a
    ConfigError naming the full key. Loading an app checks its sections; the algorithm's own
    keys are otherwise checked only when a worker builds the agent."""
    try:
        load_algorithm(config.algorithm).parse(config.algorithm.config)
    except ValueError as exc:  # "<algorithm>: <key path>: <what>"
        text = str(exc).removeprefix(f"{config.algorithm.name}: ")
        path, _, what = text.partition(": ")
        if not path.startswith("algorithm.config") or not what:
            path, what = "algorithm.config", text
        raise ConfigError(path, what) from None
