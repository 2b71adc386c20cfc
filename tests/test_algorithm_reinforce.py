"""REINFORCE with a baseline on real shards: it learns the bandit, survives CartPole, refuses bad config."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from algo_support import agent_in_serial, drive

from relaax_zmq.envs.bandit import BanditEnv

pytestmark = pytest.mark.timeout(120)

BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [8],
    "batch_size": 40,
    "gamma": 0.0,
    "optimizer": {"learning_rate": 0.05},
}


def test_reinforce_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("reinforce", BANDIT) as run:
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=600)
        assert run.agent.counters.pushes >= 20
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always


def test_reinforce_on_cartpole_pushes_finite_gradients_and_moves_the_weights() -> None:
    config = {"input": {"shape": [4]}, "output": {"actions": 2}, "batch_size": 200}
    with agent_in_serial("reinforce", config) as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=400)
        run.parameters.wait_consistent(5, newer_than=0)
        after = run.parameters.weights()[0]
        assert run.agent.counters.pushes >= 4
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({"input": {"shape": [4]}, "output": {"actions": 2}, "gama": 0.9}, "gama"),
        ({"input": {"shape": [4]}, "output": {}}, "either actions"),
        ({"input": {"shape": [4]}, "output": {"actions": 2}, "gamma": 2}, "gamma"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    from relaax_zmq.algorithms.common.config import parse_config
    from relaax_zmq.algorithms.reinforce.config import ReinforceConfig

    with pytest.raises(ValueError, match=message):
        parse_config(ReinforceConfig, config, "reinforce")
