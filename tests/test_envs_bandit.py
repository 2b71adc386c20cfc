"""The multi-armed bandit environment and its runner."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fake_server import FakeServer

from relaax_zmq.client import AgentProxy
from relaax_zmq.envs.bandit import DEFAULT_ARMS, BanditEnv, BanditRunner
from relaax_zmq.protocol import Flag, MessageType, Role


def pulls(env: BanditEnv, arm: int, count: int) -> np.ndarray:
    return np.array([env.step(arm)[1] for _ in range(count)])


def test_reward_means_match_the_arm_values() -> None:
    env = BanditEnv(episode_length=None)
    env.reset(seed=123)
    for arm, value in enumerate(DEFAULT_ARMS):
        expected = 1.0 - 2.0 * 0.5 * (1.0 + math.erf(value / math.sqrt(2.0)))  # 1 - 2 Phi(v)
        assert env.expected_reward(arm) == pytest.approx(expected)
        rewards = pulls(env, arm, 4000)
        assert set(np.unique(rewards)) <= {-1.0, 1.0}
        assert rewards.mean() == pytest.approx(expected, abs=0.05)  # ~3 standard errors
    assert int(np.argmax([env.expected_reward(a) for a in range(4)])) == 3


def test_seeded_and_truncated() -> None:
    a, b, c = BanditEnv(episode_length=50), BanditEnv(episode_length=50), BanditEnv()
    obs, _ = a.reset(seed=5)
    b.reset(seed=5)
    c.reset(seed=6)
    np.testing.assert_array_equal(obs, np.ones(1, np.float32))
    assert a.observation_space.contains(obs)
    first = [a.step(1) for _ in range(50)]
    assert [s[1] for s in first] == [b.step(1)[1] for _ in range(50)]
    assert [s[1] for s in first] != [c.step(1)[1] for _ in range(50)]
    assert [s[3] for s in first] == [False] * 49 + [True]
    assert not any(s[2] for s in first)
    with pytest.raises(ValueError, match="out of range"):
        a.step(4)


def test_runner_plays_the_bandit_through_the_agent() -> None:
    with FakeServer(action_fn=lambda m: np.full(m.session_count, 3, np.int64)) as server:
        proxy = AgentProxy(server.endpoint, request_timeout=2.0, retry_deadline=2.0)
        runner = BanditRunner(proxy, episode_length=200, seed=0)
        rewards = runner.run(max_episodes=2)
        updates = server.messages(MessageType.UPDATE)
    assert len(rewards) == 2 and all(r >= 190 for r in rewards)  # arm 3 nearly always pays
    assert len(updates) == 2 * 201
    assert updates[200].flags == Flag.TRUNCATED
    np.testing.assert_array_equal(updates[0].tensors[Role.STATE], [[1.0]])
