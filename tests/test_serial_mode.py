"""Serial mode: the shards' own update code in this process, and whole apps in one thread.

``SerialParameters`` must follow the daemons' rules exactly: the same weights after the
same gradients (ppo through one real shard is the reference), versions, sync rounds,
shared statistics and the stop at ``max_global_step``. ``SerialRunner`` steps an app
with nothing started.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import gymnasium
import numpy as np
import pytest
from algo_support import agent_in_serial, agent_on_shards, algorithm_app, drive
from test_ps_shards import ps_config

from relaax_zmq.config import load_config
from relaax_zmq.ps import load_spec
from relaax_zmq.serial import SerialParameters, SerialRunner

pytestmark = pytest.mark.timeout(120)

PPO = {
    "input": {"shape": [4]},
    "output": {"actions": 2},
    "rollout_length": 16,
    "epochs": 3,
    "minibatches": 2,
}


def _ppo_weights_after_one_phase(run) -> np.ndarray:
    agent = run.agent
    drive(
        agent,
        lambda: gymnasium.make("CartPole-v1"),
        sessions=4,
        steps=400,
        seed=7,
        until=lambda _: agent.counters.phases_done >= 1,
    )
    assert agent.counters.phases_done == 1 and agent.counters.pushes == 6
    assert run.parameters.wait_consistent(5, newer_than=5)
    vector, versions, _ = run.parameters.weights()
    assert versions.tolist() == [6]  # one version per sync round: epochs x minibatches
    return vector.copy()


def test_ppo_gets_the_same_weights_in_serial_mode_as_through_a_real_shard() -> None:
    with agent_in_serial("ppo", PPO, update="sync") as serial:
        initial = serial.parameters.weights()[0].copy()
        in_serial = _ppo_weights_after_one_phase(serial)
    with agent_on_shards("ppo", PPO, update="sync") as daemons:
        np.testing.assert_array_equal(daemons.parameters.weights()[0], initial)
        through_shard = _ppo_weights_after_one_phase(daemons)
    assert not np.array_equal(in_serial, initial)
    np.testing.assert_array_equal(in_serial, through_shard)


def test_serial_weights_depend_on_the_gradients() -> None:
    """The comparison above can fail: another split of the same rollout gives other weights."""
    with agent_in_serial("ppo", PPO, update="sync") as first:
        a = _ppo_weights_after_one_phase(first)
    with agent_in_serial("ppo", {**PPO, "epochs": 2, "minibatches": 3}, update="sync") as other:
        b = _ppo_weights_after_one_phase(other)
    assert not np.array_equal(a, b)


def _link(shards: int = 2, **ps) -> SerialParameters:
    config = ps_config(shards, algorithm={"actions": 3, "state_size": 3}, **ps)
    spec = load_spec(config)
    assert spec is not None
    return SerialParameters(config, spec)


def test_a_push_makes_one_version_on_every_shard_with_the_shards_rules() -> None:
    link = _link(2, update="async", max_staleness=0)
    vector, versions, consistent = link.weights()
    assert consistent and link.ready and versions.tolist() == [0, 0]
    before = vector.copy()
    gradient = np.ones(link.param_count, np.float32)
    assert link.push(gradient, versions, steps=10, episodes=1) == 2
    after, versions, _ = link.weights()
    assert versions.tolist() == [1, 1] and link.global_step == 10
    assert np.all(after < before)  # a descent step on every slice
    link.push(gradient, [0, 0], steps=5, episodes=0)  # stale by one: dropped by each shard
    assert link.weights()[1].tolist() == [1, 1]
    assert [c.counters.dropped_stale for c in link.cores] == [1, 1]
    assert link.global_step == 15  # its steps still count, as on the shards
    with pytest.raises(ValueError, match=r"expected \(12,\)"):
        link.push(np.ones(5, np.float32), [1, 1], 1, 0)


def test_statistics_add_up_on_shard_0_and_the_stop_comes_at_max_global_step() -> None:
    link = _link(1, max_global_step=20)
    assert link.statistics() is None  # linear_pg shares none
    versions = link.weights()[1]
    link.push(np.zeros(link.param_count, np.float32), versions, steps=25, episodes=2)
    assert link.stopping
    assert link.push(np.ones(link.param_count, np.float32), versions, 1, 0) == 0


def test_serial_runner_learns_the_bandit_with_nothing_started() -> None:
    threads = threading.active_count()
    config = load_config("conf/bandit-reinforce.yaml")
    config = dataclasses.replace(
        config, environment=dataclasses.replace(config.environment, seed=1)
    )
    run = SerialRunner(config).run(target_reward=95.0, window=32, max_steps=100_000)
    assert run.stopped.startswith("mean reward"), run
    assert run.global_step > 0 and run.mean_last(32) >= 95.0
    assert threading.active_count() == threads  # one thread did everything


def test_serial_runner_stops_at_max_steps_and_names_why() -> None:
    app = algorithm_app("reinforce", {"input": {"shape": [1]}, "output": {"actions": 4}})
    run = SerialRunner(app, sessions=4).run(max_steps=400)
    assert run.stopped.endswith(" steps")
    assert 400 <= run.steps < 420


def test_train_serial_reaches_the_target_with_progress_lines(capsys) -> None:
    from relaax_zmq.runtime.train import main

    argv = ["--config", "conf/bandit-reinforce.yaml", "--serial", "--target-reward", "95"]
    code = main([*argv, "--window", "32", "--time-limit", "60"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "serial mode" in out and "target reached" in out
    assert "mean reward" in out.splitlines()[-2]


def test_python_m_train_serial_runs_as_a_user_types_it() -> None:
    argv = ["--config", "conf/bandit-reinforce.yaml", "--serial", "--time-limit", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "relaax_zmq.runtime.train", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr  # no target: the run ends at its time limit
    assert "serial mode" in done.stdout and "stopped: time limit" in done.stdout
