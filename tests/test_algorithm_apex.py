"""Ape-X DQN: per-session exploration, the transitions and priorities actors ship, the
learner's double-DQN step and priorities, serial mode end to end, and (slow) a CartPole
solve through the real daemons."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
import yaml
from algo_support import algorithm_app, drive

from relaax_zmq.algorithms.apex import ALGORITHM
from relaax_zmq.algorithms.apex.agent import ApexActor, ApexLearner, build_model
from relaax_zmq.algorithms.apex.config import ApexConfig
from relaax_zmq.algorithms.common.config import parse_config
from relaax_zmq.algorithms.common.flat import load_flat
from relaax_zmq.config import parse_config as parse_app
from relaax_zmq.core import AgentContext
from relaax_zmq.core_learner import ExperienceBatch, LearnerContext, make_learner
from relaax_zmq.ps import load_spec
from relaax_zmq.serial import SerialParameters, SerialRunner

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}, "hidden_sizes": [32, 32]}
PRESET = Path(__file__).resolve().parent.parent / "conf" / "cartpole-apex.yaml"


class Sink:
    """An ``ExperienceSink`` that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, np.ndarray]] = []
        self.steps = 0

    def send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool:
        self.messages.append(dict(fields))
        self.steps += steps
        return True


def actor(config: dict[str, Any], sink: Sink) -> tuple[ApexActor, SerialParameters]:
    app = algorithm_app("apex", config)
    spec = load_spec(app)
    assert spec is not None
    parameters = SerialParameters(app, spec, "w0")
    context = AgentContext(
        config=app.algorithm.config, seed=3, parameters=parameters, experience=sink
    )
    agent = ALGORITHM.make_agent(context)
    assert isinstance(agent, ApexActor)
    return agent, parameters


# -- config ----------------------------------------------------------------------------------


def test_the_exploration_levels_follow_apex() -> None:
    config = parse_config(ApexConfig, {**CARTPOLE, "epsilon_levels": 8}, "apex")
    levels = config.epsilons()
    assert levels[0] == pytest.approx(0.4) and levels[-1] == pytest.approx(0.4**8)
    assert levels[3] == pytest.approx(0.4 ** (1 + 7 * 3 / 7))
    assert parse_config(ApexConfig, {**CARTPOLE, "epsilon_levels": 1}, "apex").epsilons() == [0.4]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"input": {"shape": [3]}, "output": {"low": [-1.0], "high": [1.0]}}, "discrete actions"),
        ({**CARTPOLE, "epsilon": 1.5}, "epsilon"),
        ({**CARTPOLE, "n_step": 0}, "n_step"),
        ({**CARTPOLE, "batch_size": 0}, "batch_size"),
        ({**CARTPOLE, "target_update_interval": 0}, "target_update_interval"),
        ({**CARTPOLE, "beta": 2.0}, "beta"),
        ({**CARTPOLE, "send_every": 0}, "send_every"),
        ({**CARTPOLE, "epsilon_levels": 0}, "epsilon_levels"),
        ({**CARTPOLE, "gama": 0.9}, "gama"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(ApexConfig, config, "apex")


def test_a_sync_update_is_refused_by_the_learner() -> None:
    app = algorithm_app("apex", CARTPOLE, update="sync")
    spec = load_spec(app)
    assert spec is not None
    link = SerialParameters(app, spec)
    with pytest.raises(ValueError, match="parameter_servers.update: async"):
        make_learner(ALGORITHM, LearnerContext(config=app.algorithm.config, parameters=link))


# -- the actor -------------------------------------------------------------------------------


def test_each_training_session_explores_at_its_own_level() -> None:
    agent, _ = actor({**CARTPOLE, "epsilon_levels": 3}, Sink())
    agent.open_sessions(np.array([10, 11, 12, 13], np.uint64), exploit=False)
    agent.close_sessions(np.array([11], np.uint64))
    agent.open_sessions(np.array([14], np.uint64), exploit=False)  # takes slot 1 again
    agent.open_sessions(np.array([99], np.uint64), exploit=True)
    ids = np.array([10, 14, 12, 13, 99], np.uint64)
    exploit = np.array([False, False, False, False, True])
    eps = agent.epsilon_of(ids, exploit)
    levels = [0.4, 0.4**4.5, 0.4**8]
    np.testing.assert_allclose(eps, [levels[0], levels[1], levels[2], levels[0], 0.0])
    assert sorted(agent.slots.values()) == [0, 1, 2, 3]  # exploit sessions take no slot


def test_actors_ship_n_step_transitions_with_their_td_errors_as_priorities() -> None:
    sink = Sink()
    agent, parameters = actor({**CARTPOLE, "send_every": 16, "n_step": 3, "gamma": 0.9}, sink)
    drive(agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=60)
    assert len(sink.messages) >= 10 and agent.counters.dropped == 0
    fields = {k: np.concatenate([m[k] for m in sink.messages]) for k in sink.messages[0]}
    n = len(fields["priority"])
    assert n == 16 * len(sink.messages)
    assert {k: (v.dtype.str, v.shape[1:]) for k, v in fields.items()} == {
        "obs": ("<f4", (4,)), "action": ("<i8", ()), "reward": ("<f4", ()),
        "next_obs": ("<f4", (4,)), "discount": ("<f4", ()), "priority": ("<f4", ()),
    }  # fmt: skip
    done = fields["discount"] == 0
    assert done.any() and (fields["next_obs"][done] == 0).all()  # CartPole episodes end
    gaps = np.abs(fields["discount"][~done, None] - np.array([0.729, 0.81, 0.9]))
    assert (gaps.min(axis=1) < 1e-6).all()  # gamma^m, m <= 3 steps bootstrapped
    assert (fields["reward"] <= 1 + 0.9 + 0.81 + 1e-5).all()
    model = build_model(agent.config)
    load_flat(model, torch.as_tensor(parameters.weights()[0]))  # no learner: the initial weights
    with torch.no_grad():
        q = model(torch.as_tensor(fields["obs"])).gather(
            1, torch.as_tensor(fields["action"])[:, None]
        )
        bootstrap = model(torch.as_tensor(fields["next_obs"])).max(1).values.numpy()
    expected = np.abs(fields["reward"] + fields["discount"] * bootstrap - q.squeeze(1).numpy())
    np.testing.assert_allclose(fields["priority"], expected, rtol=1e-5, atol=1e-6)
    assert sink.steps <= 240


# -- the learner -----------------------------------------------------------------------------


def test_the_learner_steps_on_importance_weighted_double_dqn_and_returns_td_errors() -> None:
    config = {**CARTPOLE, "target_update_interval": 2, "gamma": 0.9, "batch_size": 8}
    app = algorithm_app("apex", config)
    spec = load_spec(app)
    assert spec is not None
    link = SerialParameters(app, spec)
    learner = make_learner(ALGORITHM, LearnerContext(config=app.algorithm.config, parameters=link))
    assert isinstance(learner, ApexLearner) and learner.source == "replay" and learner.beta == 0.4
    rng = np.random.default_rng(0)
    fields = {
        "obs": rng.normal(size=(8, 4)).astype(np.float32),
        "action": rng.integers(0, 2, 8),
        "reward": rng.normal(size=8).astype(np.float32),
        "next_obs": rng.normal(size=(8, 4)).astype(np.float32),
        "discount": np.array([0.729] * 6 + [0, 0], np.float32),
    }
    batch = ExperienceBatch(
        fields, np.zeros(8, np.int64), steps=24, keys=np.arange(8), weights=np.ones(8, np.float32)
    )
    before = link.weights()[0].copy()
    model = build_model(learner.config)
    load_flat(model, torch.as_tensor(before))
    with torch.no_grad():  # the reference: target == online at the first step (a sync)
        q_next = model(torch.as_tensor(fields["next_obs"]))
        best = q_next.argmax(1, keepdim=True)
        target = fields["reward"] + fields["discount"] * q_next.gather(1, best).squeeze(1).numpy()
        q = model(torch.as_tensor(fields["obs"])).gather(
            1, torch.as_tensor(fields["action"])[:, None]
        )
    priorities = learner.learn(batch)
    np.testing.assert_allclose(priorities, np.abs(target - q.squeeze(1).numpy()), rtol=1e-5)
    assert not np.array_equal(link.weights()[0], before) and link.global_step == 24
    for _ in range(3):
        learner.learn(batch)
    assert learner.stats()["target_syncs"] == 2 and learner.stats()["learn_steps"] == 4


# -- serial mode -----------------------------------------------------------------------------


def test_serial_mode_learns_cartpole_from_a_prioritized_replay() -> None:
    app = {
        "version": 1,
        "environment": {"run": "gym", "name": "CartPole-v1", "clients": 8, "seed": 2},
        "parameter_servers": {"update": "async"},
        "replay": {"capacity": 5000, "min_size_to_sample": 300, "samples_per_insert": 4},
        "algorithm": {
            "name": "apex",
            "config": {
                **CARTPOLE,
                "batch_size": 32,
                "send_every": 32,
                "target_update_interval": 50,
            },
        },
    }
    runner = SerialRunner(parse_app(app))
    run = runner.run(max_steps=6000)
    assert runner.learner is not None and runner.learner.replay is not None
    replay = runner.learner.replay.stats()
    assert runner.learner.learn_steps >= 100, replay
    assert replay["priority_updates"] == runner.learner.learn_steps
    assert replay["stale_priority_keys"] == 0 and replay["malformed"] == 0
    assert 3.5 <= replay["samples_per_insert"] <= 4.5
    figures = runner.learner.learner.stats()
    assert np.isfinite(figures["loss"]) and figures["target_syncs"] >= 2
    assert run.global_step >= 5000  # the steps travel with the sampled batches
    early, late = np.mean(run.returns[:20]), np.mean(run.returns[-20:])
    assert late > early, (early, late)


# -- through the daemons (slow) --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_apex_solves_cartpole_through_the_daemons() -> None:
    """conf/cartpole-apex.yaml through shards, replay server, learner, broker and worker;
    8 exploit sessions alongside judge it (training sessions explore on purpose)."""
    from bench.learning import rolling_mean
    from relaax_zmq.config import load_config
    from relaax_zmq.envs.launch import make_vector_blocks, make_vector_runner
    from relaax_zmq.runtime.local import LocalStack
    from relaax_zmq.runtime.ports import on_free_ports

    with tempfile.TemporaryDirectory() as tmp:
        app = yaml.safe_load(PRESET.read_text())
        app["environment"].update(seed=0, max_episodes=None)
        on_free_ports(app)
        app["parameter_servers"]["checkpoint"] = {"dir": f"{tmp}/ckpt", "every_seconds": None}
        path = Path(tmp, "app.yaml")
        path.write_text(yaml.safe_dump(app))
        with LocalStack(path):
            config = load_config(path)
            runner = make_vector_blocks(config)
            env = dataclasses.replace(config.environment, clients=8, exploit=True)
            judge = make_vector_runner(dataclasses.replace(config, environment=env))
            threads = [threading.Thread(target=r.run, daemon=True) for r in (runner, judge)]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            while rolling_mean(judge.finished, 100) < 475 and time.monotonic() - start < 300:
                time.sleep(0.5)
            seconds, mean = time.monotonic() - start, rolling_mean(judge.finished, 100)
            for r in (runner, judge):
                r.stop()
            for thread in threads:
                thread.join(10)
        print(
            f"apex CartPole through the daemons: {seconds:.0f} s, {runner.steps} steps, mean {mean:.1f}"
        )
        assert mean >= 475, (seconds, runner.steps, mean)
