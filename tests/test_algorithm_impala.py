"""impala and appo: actors ship unrolls, a learner corrects their lag with V-trace.

Serial mode (``SerialRunner``: the actor, the learner daemon's intake and the shards'
update code in one thread) runs the learning tests; the daemons' own path is in
tests/test_learner_daemon.py, and full solves through them in the slow suite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.core import AgentContext
from relaax_zmq.core_learner import LearnerContext, make_learner
from relaax_zmq.runtime.registry import load_algorithm
from relaax_zmq.serial import SerialParameters
from relaax_zmq.serial.runner import SerialRunner

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}
PENDULUM = {"input": {"shape": [3]}, "output": {"low": [-2.0], "high": [2.0]}}


def app(name: str, env: str, config: dict[str, Any], clients: int = 16, **ps: Any) -> AppConfig:
    return parse_config(
        {
            "version": 1,
            "environment": {"name": env, "clients": clients, "seed": 1},
            "algorithm": {"name": name, "config": config},
            "parameter_servers": {"update": "async", **ps},
        }
    )


def test_impala_learns_cartpole_in_serial_mode() -> None:
    runner = SerialRunner(app("impala", "CartPole-v1", {**CARTPOLE, "gamma": 0.98}))
    run = runner.run(max_steps=60_000)
    first = np.mean(run.returns[:50])
    assert runner.learner is not None and runner.learner.learn_steps > 400
    assert run.global_step >= 55_000  # every shipped transition counted by the shards
    assert run.mean_last(20) > 3 * first and run.mean_last(20) > 100, (first, run.mean_last(20))


@pytest.mark.parametrize("name", ["impala", "appo"])
def test_a_gaussian_policy_learns_through_the_learner_within_bounds(name: str) -> None:
    runner = SerialRunner(app(name, "Pendulum-v1", {**PENDULUM, "batch_size": 4}, clients=4))
    before = runner.weights()[0]
    run = runner.run(max_steps=2_000)
    after = runner.weights()[0]
    assert runner.learner is not None and runner.learner.learn_steps >= 20
    figures = runner.learner.learner.stats()
    assert figures["pushes"] >= 20 and np.isfinite(figures["policy_loss"])
    assert np.isfinite(after).all() and not np.array_equal(before, after)
    assert run.steps >= 2_000


def test_appo_takes_epochs_times_minibatches_steps_per_batch_and_reports_its_clip_fraction():
    config = {**CARTPOLE, "epochs": 3, "minibatches": 2, "batch_size": 4, "unroll_length": 8}
    runner = SerialRunner(app("appo", "CartPole-v1", config, clients=4))
    learner = runner.learner.learner
    seen: list[int] = []
    loss = learner._loss
    learner._loss = lambda t: (seen.append(t["obs"].shape[1]), loss(t))[1]
    runner.run(max_steps=1_000)
    assert runner.learner is not None
    figures = runner.learner.learner.stats()
    assert figures["pushes"] == 3 * 2 * runner.learner.learn_steps > 0
    assert set(seen) == {2}  # each minibatch holds 2 of the batch's 4 unrolls
    assert 0.0 <= figures["clip_fraction"] <= 1.0
    assert figures["steps"] == runner.learner.learn_steps * 4 * 8  # counted once per batch


@pytest.mark.parametrize(("ratio", "replays"), [(2.0, [2, 2, 2, 2]), (0.5, [0, 1, 0, 1])])
def test_replay_steps_on_held_unrolls_ratio_batches_per_fresh_batch(ratio, replays) -> None:
    config = {**CARTPOLE, "batch_size": 4, "unroll_length": 8}
    config.update(replay_ratio=ratio, replay_capacity=6)
    runner = SerialRunner(app("impala", "CartPole-v1", config, clients=4))
    learner = runner.learner.learner
    shipped: set[bytes] = set()  # every unroll the learner received
    stepped: list[list[bytes]] = []  # the unrolls of each gradient step
    update, loss = learner._update, learner._loss

    def fresh(tensors, count, steps, episodes):
        if steps:  # a fresh batch (a replayed one counts no steps)
            shipped.update(unroll_keys(tensors))
        return update(tensors, count, steps, episodes)

    learner._update = fresh
    learner._loss = lambda t: (stepped.append(unroll_keys(t)), loss(t))[1]
    runner.run(max_steps=4 * 4 * 8 + 1)  # four fresh batches
    steps_per_batch = [1 + n for n in replays]
    assert runner.learner.learn_steps == 4
    assert learner.stats()["replayed_batches"] == sum(replays)
    assert len(stepped) == learner.stats()["pushes"] == sum(steps_per_batch)
    assert learner.stats()["steps"] == 4 * 4 * 8  # replayed transitions are not counted again
    assert len(learner.replay) == 6 and all(set(s) <= shipped for s in stepped)
    sizes = [len(s) for s in stepped]
    assert sizes == [4] * len(sizes)  # each replayed batch: batch_size distinct unrolls
    assert all(len(set(s)) == len(s) for s in stepped)


def unroll_keys(t: dict) -> list[bytes]:
    """Each unroll of a time-major batch, as the bytes of its observations and actions."""
    obs, action = t["obs"].transpose(0, 1), t["action"].transpose(0, 1)
    return [o.numpy().tobytes() + a.numpy().tobytes() for o, a in zip(obs, action, strict=True)]


def test_replay_needs_room_for_a_batch() -> None:
    algorithm = load_algorithm(app("impala", "CartPole-v1", CARTPOLE).algorithm)
    with pytest.raises(ValueError, match=r"replay_capacity.*batch_size \(8\).*got 4"):
        algorithm.parse({**CARTPOLE, "replay_ratio": 1.0, "replay_capacity": 4})
    assert algorithm.parse({**CARTPOLE, "replay_capacity": 0}).replay_ratio == 0.0


def test_the_learner_needs_async_parameter_servers_and_the_actor_a_link() -> None:
    config = app("impala", "CartPole-v1", CARTPOLE, update="sync")
    algorithm = load_algorithm(config.algorithm)
    from relaax_zmq.ps.plugin import load_spec

    parameters = SerialParameters(config, load_spec(config))
    with pytest.raises(ValueError, match="expected parameter_servers.update: async"):
        make_learner(algorithm, LearnerContext(config=CARTPOLE, parameters=parameters))
    with pytest.raises(ValueError, match="expected a link to the learners"):
        algorithm.make_agent(AgentContext(config=CARTPOLE, parameters=parameters))


def test_appo_refuses_more_minibatches_than_unrolls_in_a_batch() -> None:
    algorithm = load_algorithm(app("appo", "CartPole-v1", CARTPOLE).algorithm)
    with pytest.raises(ValueError, match=r"minibatches.*at most batch_size \(4.*got 5"):
        algorithm.parse({**CARTPOLE, "batch_size": 4, "minibatches": 5})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"unroll_length": 0}, "unroll_length"),
        ({"clip_rho": -1}, "clip_rho"),
        ({"vtrace_lambda": 1.5}, "vtrace_lambda"),
        ({"epochs": 2}, "epochs"),  # appo's key, unknown to impala
    ],
)
def test_bad_config_is_refused_naming_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_algorithm(app("impala", "CartPole-v1", CARTPOLE).algorithm).parse(
            {**CARTPOLE, **config}
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "budget", "seed"),
    [
        ("cartpole-impala", 240, 1),
        ("cartpole-appo", 240, 1),
        ("pendulum-appo", 240, 1),
        ("pendulum-impala", 600, 1),
        ("lunarlander-impala", 600, 2),  # seed 1 is the one of five that fell (performance.md)
    ],
)
def test_the_preset_solves_its_task_through_the_real_daemons(
    case: str, budget: float, seed: int
) -> None:
    from bench.learning import run_case

    outcome = run_case(case, seed=seed, budget=budget)
    assert outcome.solved, outcome


@pytest.mark.parametrize("lstm_size", [None, 16])
def test_the_learner_recomputes_the_actor_s_log_probabilities_exactly(lstm_size) -> None:
    """On-policy (serial mode, before any episode ends and the sessions' unrolls drift apart,
    each batch is learned on the weights that acted) every importance ratio is 1: the
    learner rebuilt the actor's observations, actions and LSTM state of each unroll. With
    the start state zeroed (the negative control) they are not."""
    import torch

    from relaax_zmq.algorithms.impala.agent import TIME_MAJOR

    config = {**CARTPOLE, "lstm_size": lstm_size, "batch_size": 4, "unroll_length": 3}
    runner = SerialRunner(app("appo", "CartPole-v1", config, clients=4))
    learner = runner.learner.learner
    ratios, zeroed = [], []
    learn = learner.learn

    def checked(batch):
        learner.fresh_weights()
        t = {
            k: torch.as_tensor(v).transpose(0, 1) if k in TIME_MAJOR else torch.as_tensor(v)
            for k, v in batch.fields.items()
        }
        with torch.no_grad():
            ratios.append(learner._loss(t)[1]["mean_rho"])
            if lstm_size is not None:
                t["h"], t["c"] = torch.zeros_like(t["h"]), torch.zeros_like(t["c"])
                zeroed.append(learner._loss(t)[1]["mean_rho"])
        return learn(batch)

    learner.learn = checked
    runner.run(max_steps=24)  # CartPole's shortest episodes end after 8 steps
    assert len(ratios) == 2
    assert max(abs(r - 1.0) for r in ratios) < 1e-6, ratios
    if lstm_size is not None:  # the first unroll starts from zeros anyway; the second does not
        assert zeroed[0] == ratios[0] and abs(zeroed[1] - 1.0) > 1e-5, zeroed


class KeptUnrolls:
    """An ``ExperienceSink`` that keeps every message it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, np.ndarray]] = []

    def send(self, fields, *, version: int, steps: int, episodes: int) -> bool:
        self.sent.append({k: np.array(v[0]) for k, v in fields.items()})
        return True


def test_normalize_rewards_scales_each_training_reward_before_a_truncation_s_bootstrap() -> None:
    """Rows that carry a reward (not an episode's first, not exploit) are scaled by the
    running return's std as they arrive; a truncated episode's bootstrap value (already in
    the scaled units the critic learns) is added after, unscaled."""
    import torch

    from relaax_zmq.algorithms.common.normalizer import RewardScaler
    from relaax_zmq.core import StepBatch
    from relaax_zmq.ps.plugin import load_spec

    config = {**PENDULUM, "normalize_rewards": True, "unroll_length": 3, "gamma": 0.9}
    settings = app("impala", "Pendulum-v1", config)
    sink = KeptUnrolls()
    parameters = SerialParameters(settings, load_spec(settings))
    agent = load_algorithm(settings.algorithm).make_agent(
        AgentContext(config=config, parameters=parameters, experience=sink)
    )
    training, exploit = np.array([1, 2], np.uint64), np.array([9], np.uint64)
    agent.open_sessions(training, exploit=False)
    agent.open_sessions(exploit, exploit=True)
    rng = np.random.default_rng(3)
    reference = RewardScaler(0.9)
    expected: dict[int, list[float]] = {1: [], 2: []}
    nan = float("nan")
    for t in range(5):  # session 2's episode is truncated at its third reward, then restarts
        rewards = np.array([nan, nan, nan] if t == 0 else [*rng.normal(-5, 3, 2), -99.0])
        rewards[1] = nan if t == 4 else rewards[1]
        truncated = np.array([False, t == 3, False])
        obs = rng.normal(size=(3, 3)).astype(np.float32)
        rows = [0] if t == 4 else [0, 1]
        if t > 0:
            scaled = reference.scale_rows([1, 2][: len(rows)], rewards[rows], truncated[rows])
            for sid, value in zip((1, 2), scaled.tolist(), strict=False):
                expected[sid].append(value)
        if t == 3:
            with torch.no_grad():
                value = float(agent.model(torch.as_tensor(obs[1:2])).value[0])
            expected[2][-1] += 0.9 * value
        agent.act(
            StepBatch(
                session_ids=np.concatenate([training, exploit]),
                rewards=rewards.astype(np.float32),
                states=obs,
                terminal=np.zeros(3, bool),
                truncated=truncated,
                exploit=np.array([False, False, True]),
            )
        )
    assert len(sink.sent) == 2  # each training session's first unroll of 3 rewards
    shipped = {round(float(u["reward"][0]), 5): u for u in sink.sent}
    for sid in (1, 2):
        unroll = shipped[round(expected[sid][0], 5)]
        np.testing.assert_allclose(unroll["reward"], expected[sid][:3], rtol=1e-5)
    np.testing.assert_array_equal(shipped[round(expected[2][0], 5)]["done"], [0, 0, 1])
    assert float(reference.rms.std) > 3.0  # the scaling mattered: raw rewards are far off
