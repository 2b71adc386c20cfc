"""Every preset in conf/ loads and its algorithm accepts its config; bench.learning's cases exist;
the bundled presets (relaax_zmq.presets) are conf/'s self-contained files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.learning import CASES, TASKS, task_of
from relaax_zmq.config import BUILTIN_RUNNERS, load_config
from relaax_zmq.presets import preset_files, presets_dir
from relaax_zmq.ps.plugin import load_spec

CONF = Path(__file__).resolve().parent.parent / "conf"
PRESETS = sorted(p.name for p in CONF.glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_its_algorithm_takes_its_config(name: str) -> None:
    config = load_config(CONF / name)
    spec = load_spec(config)
    if config.algorithm.path is None and config.algorithm.name is not None:
        assert spec is not None and spec.param_count > 0, name
    if spec is not None and config.algorithm.name in ("ppo", "trpo"):
        assert config.parameter_servers.update == "sync", f"{name}: {config.algorithm.name}"


def test_every_benchmark_case_has_a_preset_and_a_task() -> None:
    for case in CASES:
        assert (CONF / f"{case}.yaml").exists(), case
        assert task_of(case)[0] in TASKS


def test_the_bundled_presets_are_conf_files_that_need_nothing_from_the_repository() -> None:
    bundled = {p.name for p in preset_files()}
    assert bundled == set(PRESETS) - {"cartpole-c.yaml", "exchange.yaml"}
    for path in preset_files():
        assert path.read_bytes() == (CONF / path.name).read_bytes(), path.name
        config = load_config(path)
        assert config.algorithm.name is not None, path.name  # a built-in, not a path
        run = config.environment.run
        assert isinstance(run, str) and run in BUILTIN_RUNNERS, (path.name, run)
    assert presets_dir().name == "presets"
