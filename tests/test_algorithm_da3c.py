"""DA3C on real shards: the bandit, CartPole, Pendulum, an LSTM, images, bad config; slow: solves."""

from __future__ import annotations

import time
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from algo_support import Running, agent_in_serial, drive

from relaax_zmq.core import StepBatch
from relaax_zmq.envs.bandit import BanditEnv

pytestmark = pytest.mark.timeout(120)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}
BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [8],
    "t_max": 5,
    "batch_size": 20,
    "gamma": 0.0,
    "optimizer": {"learning_rate": 0.02},
}


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_and_moved(run: Running, before: np.ndarray, pushes: int) -> None:
    """The agent pushed at least ``pushes`` gradients; the shards' weights are finite and moved."""
    run.parameters.wait_consistent(5, newer_than=0)
    after = run.parameters.weights()[0]
    assert run.agent.counters.pushes >= pushes, run.agent.stats()
    assert np.isfinite(after).all() and not np.array_equal(before, after)
    assert run.shard_stats(0)["dropped_nonfinite"] == 0


def test_da3c_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("da3c", BANDIT) as run:
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=400)
        assert run.agent.counters.pushes >= 50
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always


def test_da3c_on_cartpole_pushes_finite_gradients_and_moves_the_weights() -> None:
    with agent_in_serial("da3c", {**CARTPOLE, "gae_lambda": 0.95, "batch_size": 80}) as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=400)
        trained_and_moved(run, before, pushes=5)


def test_da3c_on_pendulum_learns_a_gaussian_within_bounds() -> None:
    config = {"input": {"shape": [3]}, "output": {"low": [-2.0], "high": [2.0]}, "batch_size": 40}
    with agent_in_serial("da3c", config) as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, lambda: gymnasium.make("Pendulum-v1"), sessions=4, steps=300)
        trained_and_moved(run, before, pushes=10)
        states = np.tile(np.array([[1.0, 0.0, 8.0]], np.float32), (64, 1))
        ids = np.arange(100, 164, dtype=np.uint64)
        run.agent.open_sessions(ids, exploit=False)
        actions = run.agent.act(step(ids, states))
        assert actions.shape == (64, 1) and np.abs(actions).max() <= 2.0
        assert len(np.unique(actions)) > 1  # sampled, not the mean


def test_da3c_normalize_rewards_learns_from_scaled_rewards() -> None:
    config = {
        "input": {"shape": [3]},
        "output": {"low": [-2.0], "high": [2.0]},
        "batch_size": 40,
        "normalize_rewards": True,
    }
    with agent_in_serial("da3c", config) as run:
        seen: list[np.ndarray] = []
        learn = run.agent.learn
        run.agent.learn = lambda segments: (
            seen.extend(s.rewards for s in segments),
            learn(segments),
        )
        drive(run.agent, lambda: gymnasium.make("Pendulum-v1"), sessions=2, steps=200)
        rewards = np.concatenate(seen)
        assert run.agent.reward_scaler is not None and run.agent.counters.pushes >= 5
        # Pendulum pays -16..0 a step (median about -5); divided by the std of the
        # discounted return (gamma 0.99: tens) and clipped at 10, they shrink
        assert rewards.max() <= 0 and rewards.min() >= -10.0, (rewards.min(), rewards.max())
        assert np.median(np.abs(rewards)) < 1.0, np.median(rewards)
        assert run.agent.reward_scaler.rms.count >= 300


def step(
    ids: np.ndarray, states: np.ndarray, *, rewards: Any = np.nan, terminal: Any = False
) -> StepBatch:
    """One StepBatch of training rows (a NaN reward starts an episode)."""
    n = len(ids)
    return StepBatch(
        ids,
        np.broadcast_to(np.asarray(rewards, np.float32), (n,)).copy(),
        states,
        np.broadcast_to(np.asarray(terminal), (n,)).copy(),
        np.zeros(n, bool),
        np.zeros(n, bool),
    )


def test_da3c_lstm_state_is_per_session_and_reset_at_episode_ends() -> None:
    config = {**CARTPOLE, "lstm_size": 16, "batch_size": 40}
    with agent_in_serial("da3c", config) as run:
        agent = run.agent
        memory = agent.memory
        ids = np.array([1, 2], np.uint64)
        agent.open_sessions(ids, exploit=False)
        obs = np.array([[0.1, 0.0, 0.0, 0.0], [-0.1, 0.5, 0.2, -0.5]], np.float32)
        agent.act(step(ids, obs))
        first = [memory.get(i) for i in (1, 2)]
        assert not np.allclose(first[0][0], first[1][0])  # each session its own state
        expected = agent.model(torch.as_tensor(obs), agent.model.initial_memory(2)).memory
        np.testing.assert_allclose(first[1][0], expected[0][1].detach().numpy(), atol=1e-6)

        agent.act(step(ids[1:], obs[1:], rewards=1.0))  # session 1 not in the batch: untouched
        np.testing.assert_array_equal(memory.get(1)[0], first[0][0])
        assert not np.allclose(memory.get(2)[0], first[1][0])

        agent.act(step(ids, obs, rewards=1.0, terminal=[True, False]))
        assert memory.get(1) is None and memory.get(2) is not None  # episode 1 ended: reset
        agent.act(step(ids, obs, rewards=[np.nan, 1.0]))  # session 1 starts a new episode
        pending = agent.recorder.sessions[1].pending
        assert pending is not None and not pending[2]["h"].any()  # it acted from zeros
        np.testing.assert_allclose(memory.get(1)[0], first[0][0], atol=1e-6)
        agent.end_episodes(ids[1:])
        assert memory.get(2) is None
        agent.close_sessions(ids)
        assert len(memory) == 0

        before = run.parameters.weights()[0].copy()
        drive(agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=200)
        trained_and_moved(run, before, pushes=5)


class Lights(gymnasium.Env):
    """A tiny image task: a bright or dark 36x36 frame; the action naming it earns +1."""

    observation_space = gymnasium.spaces.Box(0, 255, (36, 36, 1), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.steps = 0
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        self.bright = int(self.np_random.integers(2))
        return np.full((36, 36, 1), 200 * self.bright, np.uint8)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = 1.0 if int(action) == self.bright else 0.0
        self.steps += 1
        return self._frame(), reward, False, self.steps >= 10, {}


def test_da3c_learns_from_uint8_images_through_the_conv_torso() -> None:
    config = {
        "input": {"shape": [36, 36, 1], "dtype": "uint8"},
        "output": {"actions": 2},
        "hidden_sizes": [16],
        "t_max": 5,
        "batch_size": 20,
    }
    with agent_in_serial("da3c", config) as run:
        assert type(run.agent.model.torso).__name__ == "ConvTorso"
        before = run.parameters.weights()[0].copy()
        drive(run.agent, Lights, sessions=4, steps=60)
        trained_and_moved(run, before, pushes=5)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({**CARTPOLE, "tmax": 5}, "tmax"),
        ({**CARTPOLE, "gae_lambda": 1.5}, "gae_lambda"),
        ({**CARTPOLE, "t_max": 0}, "t_max"),
        ({**CARTPOLE, "lstm_size": 0}, "lstm_size"),
        ({"input": {"shape": [4]}, "output": {}}, "either actions"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config: dict, message: str) -> None:
    from relaax_zmq.algorithms.common.config import parse_config
    from relaax_zmq.algorithms.da3c.config import DA3CConfig

    with pytest.raises(ValueError, match=message):
        parse_config(DA3CConfig, config, "da3c")


def solve(
    config: dict, make_env: Any, *, sessions: int, max_steps: int
) -> tuple[float, int, float]:
    """(mean return of the last 100 episodes, steps, seconds) when it reached 475 or gave up."""
    start = time.monotonic()
    with agent_in_serial("da3c", config) as run:
        driven = drive(
            run.agent,
            make_env,
            sessions=sessions,
            steps=max_steps // sessions,
            until=lambda d: len(d.returns) >= 100 and d.mean_last(100) >= 475,
        )
    seconds = time.monotonic() - start
    print(f"da3c: mean {driven.mean_last(100):.1f} after {driven.steps} steps, {seconds:.0f} s")
    return driven.mean_last(100), driven.steps, seconds


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_da3c_solves_cartpole() -> None:
    mean, steps, _ = solve(
        CARTPOLE, lambda: gymnasium.make("CartPole-v1"), sessions=16, max_steps=300_000
    )
    assert mean >= 475, (mean, steps)


class PositionsOnly(gymnasium.ObservationWrapper):
    """CartPole with the velocities hidden: x and theta only (a memory task)."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[[0, 2]].astype(np.float32)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_da3c_lstm_balances_cartpole_without_velocities() -> None:
    """An LSTM must infer the velocities from the positions it sees (conf/cartpole-memory-da3c:
    rewards scaled, or the value loss swamps the shared torso)."""
    config = {
        "input": {"shape": [2], "normalize": True},
        "output": {"actions": 2},
        "lstm_size": 64,
        "hidden_sizes": [64],
        "normalize_rewards": True,
        "optimizer": {
            "learning_rate": {"kind": "linear", "initial": 2e-3, "final": 2e-4, "steps": 4000},
        },
    }
    mean, steps, _ = solve(
        config,
        lambda: PositionsOnly(gymnasium.make("CartPole-v1")),
        sessions=16,
        max_steps=1_500_000,
    )
    assert mean >= 475, (mean, steps)
