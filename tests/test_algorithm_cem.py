"""The cross-entropy method on real shards (update: async): it learns the bandit, its elite
step matches a hand computation and the pushed delta lands the shards on it, it survives
CartPole, it refuses bad config; slow: its mean policy solves CartPole-v1."""

from __future__ import annotations

import math
import time

import gymnasium
import numpy as np
import pytest
import torch
from algo_support import agent_in_serial, drive

from relaax_zmq.algorithms.cem.policy import ParameterPolicy, cem_update
from relaax_zmq.algorithms.common.spaces import ActionSpec, ObservationSpec
from relaax_zmq.envs.bandit import BanditEnv

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}
BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [8],
    "population": 10,
    "elite_fraction": 0.2,
    "noise": 0.05,
}


def test_cem_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("cem", BANDIT) as run:
        untrained = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=22, exploit=True
        )
        assert untrained.mean_last(4) < 5.0, untrained.returns  # the initial mean is not arm 3
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=800)
        assert run.agent.counters.pushes >= 20
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always


def test_cem_update_keeps_the_elite_and_fits_mean_and_std_by_hand() -> None:
    thetas = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0], [6.0, 5.0], [1.0, 1.0]])
    returns = torch.tensor([1.0, 7.0, 3.0, 5.0, 7.0])
    step = cem_update(thetas, returns, elite_count=3, noise=0.5, min_std=0.1)
    # best first, ties in row order: rows 1 and 4 (7.0), then row 3 (5.0)
    assert step.elite.tolist() == [1, 4, 3]
    # mean of (2, 3), (1, 1), (6, 5): (3, 3); variance (over 3) + 0.5: (14/3 + 0.5, 8/3 + 0.5)
    assert torch.allclose(step.mean, torch.tensor([3.0, 3.0]))
    expected_std = torch.tensor([math.sqrt(14 / 3 + 0.5), math.sqrt(8 / 3 + 0.5)])
    assert torch.allclose(step.std, expected_std)
    one = cem_update(thetas, returns, elite_count=1, noise=0.0, min_std=0.1)
    assert one.elite.tolist() == [1] and torch.allclose(one.std, torch.tensor([0.1, 0.1]))
    with pytest.raises(ValueError, match="elite_count"):
        cem_update(thetas, returns, elite_count=6, noise=0.0, min_std=0.1)


def test_the_pushed_delta_lands_the_shards_on_the_elite_fit() -> None:
    config = {**BANDIT, "population": 8, "elite_fraction": 0.25, "noise": 0.1}
    with agent_in_serial("cem", config) as run:
        agent = run.agent
        before = run.parameters.weights()[0].copy()
        drive(
            agent,
            lambda: BanditEnv(episode_length=10),
            sessions=4,
            steps=100,
            until=lambda _: agent.counters.pushes >= 1,
        )
        update = agent.last_update
        assert update is not None and agent.counters.pushes == 1
        np.testing.assert_array_equal(update.current, before)
        thetas, returns = update.thetas.numpy(), update.returns.numpy()
        assert len(returns) == 8 and set(returns) <= set(range(-10, 11, 2))
        elite = np.argsort(-returns, kind="stable")[:2]
        mean = thetas[elite].mean(axis=0)
        std = np.sqrt(thetas[elite].var(axis=0) + 0.1)
        np.testing.assert_allclose(update.new, np.concatenate([mean, np.log(std)]), atol=1e-5)
        assert run.parameters.wait_consistent(5, newer_than=0)
        np.testing.assert_allclose(run.parameters.weights()[0], update.new, rtol=0, atol=1e-6)


def test_the_policy_applies_one_parameter_vector_per_row() -> None:
    policy = ParameterPolicy(ObservationSpec((3,)), ActionSpec.continuous([-2.0], [2.0]), (5,))
    networks = [policy.network() for _ in range(2)]
    thetas = torch.stack([torch.cat([p.reshape(-1) for p in n.parameters()]) for n in networks])
    states = torch.randn(2, 3)
    with torch.no_grad():
        expected = torch.cat([n(states[i : i + 1]) for i, n in enumerate(networks)])
        np.testing.assert_allclose(policy.outputs(thetas, states), expected, atol=1e-6)
        actions = policy.actions(thetas, states)
    assert actions.shape == (2, 1)
    np.testing.assert_allclose(actions, 2.0 * torch.tanh(expected), atol=1e-6)


def test_cem_on_cartpole_pushes_finite_deltas_and_moves_the_weights() -> None:
    config = {**CARTPOLE, "population": 8, "hidden_sizes": [8]}
    with agent_in_serial("cem", config) as run:
        before = run.parameters.weights()[0].copy()
        drive(
            run.agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=4,
            steps=3000,
            until=lambda _: run.agent.counters.pushes >= 3,
        )
        run.parameters.wait_consistent(5, newer_than=2)
        after = run.parameters.weights()[0]
        assert run.agent.counters.pushes >= 3
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({**CARTPOLE, "populaton": 10}, "populaton"),
        ({**CARTPOLE, "population": 4, "elite_fraction": 0.1}, "elite_fraction"),
        ({**CARTPOLE, "initial_std": 0}, "initial_std"),
        ({**CARTPOLE, "noise": {"kind": "linear", "initial": 1.0}}, "noise"),
        ({**CARTPOLE, "noise": -1.0}, "noise"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    from relaax_zmq.algorithms.cem.config import CEMConfig
    from relaax_zmq.algorithms.common.config import parse_config

    with pytest.raises(ValueError, match=message):
        parse_config(CEMConfig, config, "cem")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cem_mean_policy_solves_cartpole() -> None:
    """Train until a population's elite all reach 500, then 100 exploit episodes (the mean)."""
    with agent_in_serial("cem", CARTPOLE) as run:
        agent = run.agent
        start = time.monotonic()

        def elite_solved(_) -> bool:
            update = agent.last_update
            return update is not None and float(update.returns[update.step.elite].min()) >= 500

        trained = drive(
            agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=8,
            steps=50_000,
            until=elite_solved,
        )
        seconds = time.monotonic() - start
        run.parameters.wait_consistent(5, newer_than=int(agent.versions[0]))
        greedy = drive(
            agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=10,
            steps=10_000,
            exploit=True,
            until=lambda d: len(d.returns) >= 100,
        )
        print(
            f"cem CartPole-v1: training {trained.steps} steps, {len(trained.returns)} episodes, "
            f"{agent.counters.pushes} updates, {seconds:.1f} s, mean of the last 100 "
            f"training episodes {trained.mean_last(100):.1f}; mean policy over "
            f"{len(greedy.returns)} exploit episodes: {np.mean(greedy.returns[:100]):.1f}"
        )
        assert len(greedy.returns) >= 100 and np.mean(greedy.returns[:100]) >= 475
