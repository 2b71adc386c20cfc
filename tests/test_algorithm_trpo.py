"""TRPO-GAE on real shards (update: sync): it learns the bandit, its pushed delta lands the
shards on the worker's new vector within the KL limit, it survives CartPole, it refuses
async shards and bad config; slow: it solves CartPole-v1."""

from __future__ import annotations

import time

import gymnasium
import numpy as np
import pytest
import torch
from algo_support import agent_in_serial, drive

from relaax_zmq.envs.bandit import BanditEnv

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}
BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [4],
    "rollout_length": 40,
    "segment_length": 10,
    "gamma": 0.0,
    "max_kl": 0.05,
}


def test_trpo_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("trpo", BANDIT, update="sync") as run:
        untrained = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=22, exploit=True
        )
        assert untrained.mean_last(4) < 5.0, untrained.returns  # the initial mean is not arm 3
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=200)
        assert run.agent.counters.pushes >= 15
        assert run.agent.counters.sync_timeouts == 0
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always


def test_the_pushed_delta_lands_the_shards_on_the_new_vector_within_the_kl_limit() -> None:
    config = {**CARTPOLE, "rollout_length": 256, "max_kl": 0.01}
    with agent_in_serial("trpo", config, update="sync") as run:
        agent = run.agent
        before = run.parameters.weights()[0].copy()
        drive(
            agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=4,
            steps=200,
            until=lambda _: agent.counters.pushes >= 1,
        )
        update = agent.last_update
        assert update is not None and agent.counters.pushes == 1
        assert update.step.success
        np.testing.assert_array_equal(update.old, before)
        weights, versions, consistent = run.parameters.weights()
        assert consistent and versions[0] == update.version + 1
        # exactly the shard's SGD step (lr 1.0) on the delta: new up to float32 rounding
        np.testing.assert_array_equal(weights, update.old - (update.old - update.new))
        np.testing.assert_allclose(weights, update.new, rtol=0, atol=1e-7)
        assert not np.allclose(weights, before)
        # the KL between the policies at the old and the shards' new weights, on the rollout
        agent.flat.load(before)
        with torch.no_grad():
            old = agent.model.distribution(agent.model(update.states).head)
            agent.flat.load(weights.copy())
            new = agent.model.distribution(agent.model(update.states).head)
        kl = float(old.kl(new).mean())
        assert 0 < kl <= 1.5 * config["max_kl"], kl
        assert kl == pytest.approx(update.step.kl, rel=1e-3, abs=1e-6)


def test_trpo_on_cartpole_pushes_finite_deltas_and_moves_the_weights() -> None:
    config = {**CARTPOLE, "rollout_length": 200}
    with agent_in_serial("trpo", config, update="sync") as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=300)
        after = run.parameters.weights()[0]
        assert run.agent.counters.pushes >= 4
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0
        assert run.shard_stats(0)["version"] == run.agent.counters.pushes


def test_trpo_refuses_async_parameter_servers() -> None:
    with pytest.raises(ValueError, match="expected parameter_servers.update 'sync'"):
        with agent_in_serial("trpo", CARTPOLE, update="async"):
            pass


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({**CARTPOLE, "max_kll": 0.01}, "max_kll"),
        ({**CARTPOLE, "max_kl": 0}, "max_kl"),
        ({**CARTPOLE, "gae_lambda": 1.5}, "gae_lambda"),
        ({**CARTPOLE, "optimizer": {"learning_rate": 0.1}}, "optimizer"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    from relaax_zmq.algorithms.common.config import parse_config
    from relaax_zmq.algorithms.trpo.config import TRPOConfig

    with pytest.raises(ValueError, match=message):
        parse_config(TRPOConfig, config, "trpo")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_trpo_solves_cartpole() -> None:
    with agent_in_serial("trpo", CARTPOLE, update="sync") as run:
        start = time.monotonic()
        driven = drive(
            run.agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=8,
            steps=100_000,
            until=lambda d: len(d.returns) >= 100 and d.mean_last(100) >= 475,
        )
        seconds = time.monotonic() - start
        print(
            f"trpo CartPole-v1: mean of the last 100 episodes {driven.mean_last(100):.1f} "
            f"after {driven.steps} steps, {len(driven.returns)} episodes, {seconds:.0f} s, "
            f"{run.agent.counters.pushes} pushes"
        )
        assert driven.mean_last(100) >= 475
