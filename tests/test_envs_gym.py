"""GymRunner and the space conversions against a fake RLX server."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from fake_server import FakeServer, agent
from gymnasium import spaces

from relaax_zmq.envs.gym_runner import GymRunner
from relaax_zmq.envs.spaces import action_converter, observation_converter
from relaax_zmq.protocol import Flag, MessageType, Role


class TinyImageEnv(gymnasium.Env):
    """8x8 RGB uint8 frames; the episode ends after 4 steps; reward = action."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.action_space = spaces.Discrete(3)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (8, 8, 3), dtype=np.uint8), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert isinstance(action, int)
        self.t += 1
        return np.full((8, 8, 3), self.t, np.uint8), float(action), self.t >= 4, False, {}


def test_cartpole_runs_seeded_episodes(server: FakeServer) -> None:
    rewards = [
        GymRunner(agent(server), "CartPole-v1", seed=seed).run(max_episodes=2) for seed in (3, 3, 4)
    ]
    assert rewards[0] == rewards[1] != rewards[2]
    assert all(5 <= r < 100 for r in rewards[0])  # always pushing left fails fast
    updates = server.messages(MessageType.UPDATE)
    assert all(u.tensors[Role.STATE].shape == (1, 4) for u in updates)
    assert updates[0].tensors[Role.STATE].dtype == np.float32
    assert sum(1 for u in updates if u.flags & Flag.TERMINAL) == 6


def test_pendulum_box_actions_are_clipped(server: FakeServer) -> None:
    server.action_fn = lambda m: np.full((m.session_count, 1), 5.0, np.float32)
    runner = GymRunner(agent(server), "Pendulum-v1", seed=0, max_episode_steps=10)
    seen: list[np.ndarray] = []
    step = runner.env.step
    runner.env.step = lambda action: (seen.append(action), step(action))[1]
    rewards = runner.run(max_episodes=1)
    assert len(rewards) == 1 and rewards[0] < 0
    assert len(seen) == 10
    assert all(a.shape == (1,) and a.dtype == np.float32 and a[0] == 2.0 for a in seen)
    assert server.messages(MessageType.UPDATE)[-1].flags == Flag.TRUNCATED


def test_image_observations_travel_as_uint8(server: FakeServer) -> None:
    server.action_fn = lambda m: np.full(m.session_count, 2, np.int64)
    runner = GymRunner(agent(server), TinyImageEnv(), seed=1)
    assert runner.run(max_episodes=1) == [8.0]
    states = [u.tensors[Role.STATE] for u in server.messages(MessageType.UPDATE)]
    assert len(states) == 5
    assert all(s.dtype == np.uint8 and s.shape == (1, 8, 8, 3) for s in states)
    np.testing.assert_array_equal(states[-1], np.full((1, 8, 8, 3), 4, np.uint8))


def test_space_conversions() -> None:
    to_one_hot = observation_converter(spaces.Discrete(4, start=1))
    np.testing.assert_array_equal(to_one_hot(np.int64(3)), np.float32([0, 0, 1, 0]))
    box = observation_converter(spaces.Box(0.0, 1.0, (2,), np.float64))
    assert box([0.5, 0.25]).dtype == np.float64
    flat = observation_converter(spaces.Tuple([spaces.Discrete(2), spaces.Box(0, 1, (1,))]))
    np.testing.assert_array_equal(flat((1, np.float32([0.5]))), np.float32([0, 1, 0.5]))

    discrete = action_converter(spaces.Discrete(3, start=-1))
    assert discrete(np.array([2])) == 1 and isinstance(discrete(np.int64(0)), int)
    clipped = action_converter(spaces.Box(-1.0, np.float32([1.0, 2.0]), (2,), np.float32))
    np.testing.assert_array_equal(clipped(np.array([-3.0, 3.0])), np.float32([-1.0, 2.0]))
    multi = action_converter(spaces.MultiDiscrete([2, 3]))
    np.testing.assert_array_equal(multi(np.array([1.0, 2.0])), [1, 2])
    with pytest.raises(TypeError, match="unsupported action space"):
        action_converter(spaces.Text(5))
