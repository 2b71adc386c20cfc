"""The plugin API is small and kept: core.py, one declaration per algorithm, clean imports."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from relaax_zmq.algorithms.common.agent import TorchAgent
from relaax_zmq.config.convert import from_mapping
from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.core import Agent, Algorithm
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.registry import ENTRY_POINT_GROUP, algorithm_names, load_algorithm

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ROOT / "algorithms"
BUILT_IN = sorted(p.name for p in ALGORITHMS.iterdir() if (p / "__init__.py").is_file())
#: what algorithm packages may import of this project (plus their own relative imports)
ALLOWED = ("relaax_zmq.core", "relaax_zmq.core_learner", "relaax_zmq.algorithms.common")
#: what the shared pieces must never reach into: the runtime roles
RUNTIME = ("relaax_zmq.ps", "relaax_zmq.worker", "relaax_zmq.broker", "relaax_zmq.client")


def _project_imports(path: Path) -> list[str]:
    """Absolute ``relaax_zmq`` modules ``path`` imports (at any depth)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [m for m in found if m.split(".")[0] == "relaax_zmq"]


def test_core_is_at_most_255_lines_and_its_learner_part_100() -> None:
    lines = len((ROOT / "relaax_zmq" / "core.py").read_text().splitlines())
    assert lines <= 255, lines
    lines = len((ROOT / "relaax_zmq" / "core_learner.py").read_text().splitlines())
    assert lines <= 100, lines


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "common"])
def test_algorithm_packages_import_only_core_and_common(name: str) -> None:
    for path in (ALGORITHMS / name).rglob("*.py"):
        bad = [m for m in _project_imports(path) if not m.startswith(ALLOWED)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_example_imports_only_core_and_common() -> None:
    for path in (ROOT / "examples").rglob("*.py"):
        bad = [m for m in _project_imports(path) if not m.startswith(ALLOWED)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_shared_pieces_never_reach_into_the_runtime() -> None:
    for path in (ALGORITHMS / "common").rglob("*.py"):
        bad = [m for m in _project_imports(path) if m.startswith(RUNTIME)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_import_check_can_fail(tmp_path) -> None:
    bad = tmp_path / "agent.py"
    bad.write_text("from relaax_zmq.ps.client import ParameterClient\nfrom . import x\n")
    assert _project_imports(bad) == ["relaax_zmq.ps.client"]


def test_every_built_in_is_an_entry_point_declared_once() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    builtins = [n for n in BUILT_IN if n != "common"]
    assert sorted(declared) == algorithm_names() == builtins
    for name in builtins:
        algorithm = load_algorithm(AlgorithmConfig(name=name))
        assert isinstance(algorithm, Algorithm) and algorithm.name == name
        assert declared[name] == f"relaax_zmq.algorithms.{name}:ALGORITHM"
        assert not (ALGORITHMS / name / "parameter_server.py").exists()
        assert algorithm.model is not None and algorithm.parameter_server is not None


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "common"])
def test_no_built_in_overrides_act(name: str) -> None:
    agent = load_algorithm(AlgorithmConfig(name=name)).agent
    assert isinstance(agent, type) and issubclass(agent, TorchAgent)
    owners = [cls for cls in agent.__mro__ if "act" in vars(cls)]
    assert owners[0] is TorchAgent, f"{name}: act defined by {owners[0].__name__}"
    assert owners[1] is Agent  # the abstract declaration only


def test_an_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError, match="algorithm.name: expected one of .*appo, cem, da3c.*got 'nope'"):
        from_mapping(AlgorithmConfig, {"name": "nope"}, "algorithm")


def test_no_installed_module_is_over_400_lines() -> None:
    roots = [ROOT / "relaax_zmq", ROOT / "broker", ROOT / "envs", ALGORITHMS]
    long = {
        str(p.relative_to(ROOT)): n
        for root in roots
        for p in root.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long


def test_relaax_zmq_keeps_only_the_plugin_api_and_errors_at_its_top() -> None:
    loose = sorted(p.name for p in (ROOT / "relaax_zmq").glob("*.py"))
    assert loose == ["__init__.py", "core.py", "core_learner.py", "errors.py"], loose
