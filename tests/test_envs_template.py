"""The custom-runner template is a working runner."""

from __future__ import annotations

import numpy as np
import pytest
from fake_server import FakeServer

from relaax_zmq.client import AgentProxy
from relaax_zmq.envs.template import Walk, WalkRunner
from relaax_zmq.protocol import Flag, MessageType


def test_walk_reaches_the_goal_and_stays_on_the_line() -> None:
    walk = Walk(size=2, step_penalty=0.5)
    np.testing.assert_array_equal(walk.reset(), [0.0])
    assert walk.step(0) == (-0.5, pytest.approx(np.float32([-0.5])), False)
    walk.step(0)
    walk.step(0)
    assert walk.position == -2  # clamped
    for _ in range(3):
        reward, _, done = walk.step(1)
        assert not done
    reward, state, done = walk.step(1)
    assert done and reward == 0.5 and state[0] == 1.0


def test_template_runner_walks_to_the_goal() -> None:
    with FakeServer(action_fn=lambda m: np.ones(m.session_count, np.int64)) as server:
        proxy = AgentProxy(server.endpoint, request_timeout=2.0, retry_deadline=2.0)
        rewards = WalkRunner(proxy, size=4, step_penalty=0.25).run(max_episodes=3)
        updates = server.messages(MessageType.UPDATE)
    assert rewards == [0.0, 0.0, 0.0]  # 4 steps of -0.25, then +1
    assert [u.flags for u in updates[:5]] == [0, 0, 0, 0, Flag.TERMINAL]


def test_template_runner_is_truncated_when_walking_away() -> None:
    with FakeServer() as server:  # always action 0: away from the goal
        proxy = AgentProxy(server.endpoint, request_timeout=2.0, retry_deadline=2.0)
        runner = WalkRunner(proxy, size=3, max_episode_steps=7)
        assert runner.run(max_episodes=1) == [pytest.approx(-0.7)]
        assert server.messages(MessageType.UPDATE)[-1].flags == Flag.TRUNCATED
