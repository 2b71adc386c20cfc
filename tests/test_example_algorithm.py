"""The 100-line algorithm (examples/reinforce): short enough, loaded by path, solves CartPole.

Counted by this test: at most 100 lines of Python, its config included. It must reach a
mean of 475 over the last 100 CartPole-v1 episodes in serial mode and through the real
daemons (both slow); the default suite checks that it loads, acts and pushes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.runtime.ports import on_free_ports
from relaax_zmq.serial import SerialRunner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reinforce"

pytestmark = pytest.mark.timeout(900)


def _seeded(seed: int) -> AppConfig:
    config = load_config(EXAMPLE / "app.yaml")
    return dataclasses.replace(
        config, environment=dataclasses.replace(config.environment, seed=seed)
    )


def test_the_example_is_at_most_100_lines_of_python() -> None:
    files = sorted(EXAMPLE.rglob("*.py"))
    assert files, "no Python in the example"
    lines = sum(len(f.read_text().splitlines()) for f in files)
    assert lines <= 100, f"{lines} lines in {[f.name for f in files]}"


def test_the_example_loads_by_path_and_learns_in_serial_mode() -> None:
    runner = SerialRunner(_seeded(0))
    assert runner.agent.name == "example"
    run = runner.run(max_steps=6000)
    assert run.global_step >= 5000 and run.returns  # gradients went to the shards' core
    assert runner.agent.counters.pushes >= 4


@pytest.mark.slow
def test_the_example_solves_cartpole_in_serial_mode() -> None:
    run = SerialRunner(_seeded(0)).run(target_reward=475, time_limit=600)
    assert run.mean_last(100) >= 475, run.stopped


@pytest.mark.slow
def test_the_example_solves_cartpole_through_the_real_daemons(tmp_path) -> None:
    from relaax_zmq.runtime.train import main

    app = yaml.safe_load((EXAMPLE / "app.yaml").read_text())
    app["algorithm"]["path"] = str(EXAMPLE / "algorithm")
    app["environment"]["seed"] = 0
    on_free_ports(app)
    app["parameter_servers"]["checkpoint"] = {"dir": str(tmp_path / "checkpoints")}
    app["metrics"]["logdir"] = str(tmp_path / "tb")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    code = main(["--config", str(path), "--target-reward", "475", "--time-limit", "600"])
    assert code == 0, "the mean of the last 100 episodes did not reach 475 in 600 s"
