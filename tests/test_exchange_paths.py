"""The same seeded run in serial mode, through the in-process path, through the broker and
through the WebSocket gateway is identical."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gateway_support import running_gateway

from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.core import AgentContext
from relaax_zmq.envs.gym_runner import GymRunner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.runtime.registry import load_agent
from relaax_zmq.serial import AgentBlock
from relaax_zmq.testing import LINEAR_POLICY_PATH
from relaax_zmq.worker import SessionHost

pytestmark = pytest.mark.timeout(120)
POLICY = {"actions": 2}


class Recorder(gym.Wrapper):
    """Keeps every (observation, action, reward) the environment sees."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps: list[tuple[np.ndarray, int, float]] = []
        self.last: np.ndarray | None = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.last = obs
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps.append((self.last, int(action), float(reward)))
        self.last = obs
        return obs, reward, terminated, truncated, info


def _agent():
    config = AlgorithmConfig(path=LINEAR_POLICY_PATH, config=POLICY)
    return load_agent(config, AgentContext(POLICY))


def _host() -> SessionHost:
    return SessionHost(_agent())


def _single(proxy: AgentProxy, seed: int) -> tuple[list[float], Recorder]:
    env = Recorder(gym.make("CartPole-v1"))
    rewards = GymRunner(proxy, env, seed=seed, max_episode_steps=200).run(max_episodes=3)
    return rewards, env


def _vector(
    proxy: VectorAgentProxy | AgentBlock, seed: int
) -> tuple[list[list[float]], list[Recorder]]:
    envs = [Recorder(gym.make("CartPole-v1")) for _ in range(proxy.n)]
    runner = VectorRunner(proxy, envs, seed=seed, max_episode_steps=100)
    runner.run(max_episodes=2)
    return runner.episodes, envs


def _same(a: list[tuple[np.ndarray, int, float]], b: list[tuple[np.ndarray, int, float]]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b, strict=True)
    )


def test_serial_in_process_broker_and_gateway_runs_are_identical(tmp_path) -> None:
    serial_vector, serial_envs = _vector(AgentBlock(_agent(), 6), seed=5)
    local_rewards, local_env = _single(AgentProxy.in_process(_host()), seed=11)
    local_vector, local_envs = _vector(VectorAgentProxy.in_process(_host(), 6), seed=5)
    with running_gateway(tmp_path, workers=2) as app:
        frontend = app.exchange.frontend
        remote_rewards, remote_env = _single(AgentProxy(frontend), seed=11)
        remote_vector, remote_envs = _vector(VectorAgentProxy(frontend, 6), seed=5)
        web_rewards, web_env = _single(AgentProxy(app.url), seed=11)
        web_vector, web_envs = _vector(VectorAgentProxy(app.url, 6), seed=5)
    assert len(local_env.steps) > 20
    assert local_rewards == remote_rewards == web_rewards
    assert _same(local_env.steps, remote_env.steps), "step-for-step identical trajectories"
    assert _same(local_env.steps, web_env.steps)
    assert serial_vector == local_vector == remote_vector == web_vector
    for envs in (remote_envs, web_envs):
        assert all(_same(a.steps, b.steps) for a, b in zip(local_envs, envs, strict=True))
        assert all(_same(a.steps, b.steps) for a, b in zip(serial_envs, envs, strict=True))


def test_a_different_seed_gives_a_different_trajectory() -> None:
    """The comparison above can fail: trajectories do depend on the seed."""
    _, first = _single(AgentProxy.in_process(_host()), seed=11)
    _, second = _single(AgentProxy.in_process(_host()), seed=12)
    assert not _same(first.steps, second.steps)
