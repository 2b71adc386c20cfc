"""Find an algorithm package by ``algorithm.name`` or ``algorithm.path``; build its parts.

``load_agent`` builds the agent side (``<package>.agent``), ``load_parameter_server``
the parameter-server side (``<package>.parameter_server``, optional).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from relaax_zmq.agent import Agent, AgentContext
from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.errors import ConfigError
from relaax_zmq.imports import import_path
from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec


def algorithm_package(algorithm: AlgorithmConfig) -> ModuleType:
    """The package of the configured algorithm, imported."""
    if algorithm.name is not None:
        name = f"relaax_zmq.algorithms.{algorithm.name}"
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            raise ConfigError(
                "algorithm.name", f"built-in algorithm {algorithm.name!r} is not installed"
            ) from None
    assert algorithm.path is not None  # AlgorithmConfig guarantees one of the two
    return _import_folder(algorithm.path)


def load_agent(algorithm: AlgorithmConfig, context: AgentContext) -> Agent:
    """Import ``<package>.agent`` and call its ``make_agent(context)``."""
    package = algorithm_package(algorithm)
    where = "algorithm.name" if algorithm.name is not None else "algorithm.path"
    try:
        module = importlib.import_module(f"{package.__name__}.agent")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package.__name__}.agent":
            raise
        raise ConfigError(where, f"expected an 'agent' module in {package.__name__}") from None
    make_agent = getattr(module, "make_agent", None)
    if not callable(make_agent):
        raise ConfigError(where, f"expected {module.__name__}.make_agent(context) -> Agent")
    agent = make_agent(context)
    if not isinstance(agent, Agent):
        raise ConfigError(
            where, f"expected make_agent to return an Agent, got {type(agent).__name__}"
        )
    return agent


def load_parameter_server(
    algorithm: AlgorithmConfig, context: ParameterServerContext
) -> ParameterServerSpec | None:
    """``<package>.parameter_server.make_parameter_server(context)``; None without the module."""
    package = algorithm_package(algorithm)
    where = "algorithm.name" if algorithm.name is not None else "algorithm.path"
    name = f"{package.__name__}.parameter_server"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
    make = getattr(module, "make_parameter_server", None)
    if not callable(make):
        raise ConfigError(
            where, f"expected {name}.make_parameter_server(context) -> ParameterServerSpec"
        )
    spec = make(context)
    if not isinstance(spec, ParameterServerSpec):
        raise ConfigError(
            where,
            f"expected make_parameter_server to return a ParameterServerSpec, "
            f"got {type(spec).__name__}",
        )
    return spec


def _import_folder(folder: Path) -> ModuleType:
    """Import ``folder`` as a package (``algorithm.path``)."""
    if not (folder / "__init__.py").is_file():
        raise ConfigError(
            "algorithm.path", f"expected a package folder with {folder / '__init__.py'}"
        )
    return import_path(folder, "relaax_app_algorithm")
