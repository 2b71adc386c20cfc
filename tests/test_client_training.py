"""TrainingBase: the episode loop, truncation, metrics and EpisodeRestart."""

from __future__ import annotations

from typing import Any

import numpy as np
from fake_server import FakeServer, agent

from relaax_zmq.client import AgentProxy, TrainingBase
from relaax_zmq.protocol import Flag, Message, MessageType, Role, messages


class Countdown(TrainingBase):
    """Episodes of ``length`` steps, reward 1 per step; the state is the steps left."""

    def __init__(self, proxy: AgentProxy, length: int = 3, **options: Any) -> None:
        super().__init__(proxy, **options)
        self.length = length
        self.left = 0
        self.actions: list[Any] = []
        self.resets = 0
        self.closed = False

    def reset_env(self) -> np.ndarray:
        self.resets += 1
        self.left = self.length
        return np.array([self.left], np.float32)

    def step_env(self, action: Any) -> tuple[float, np.ndarray, bool, bool]:
        self.actions.append(action)
        self.left -= 1
        return 1.0, np.array([self.left], np.float32), self.left == 0, False

    def close_env(self) -> None:
        self.closed = True


def test_run_reports_every_episode_and_disconnects(server: FakeServer) -> None:
    runner = Countdown(agent(server), length=3, exploit=True)
    assert runner.run(max_episodes=2) == [3.0, 3.0]
    assert runner.closed and runner.agent.session_id is None
    assert server.messages(MessageType.INIT)[0].flags == Flag.EXPLOIT
    updates = server.messages(MessageType.UPDATE)
    assert len(updates) == 8  # 3 steps + the terminal update, twice
    assert Role.REWARD not in updates[0].tensors and Role.REWARD not in updates[4].tensors
    assert [u.flags for u in updates[:4]] == [0, 0, 0, Flag.TERMINAL]
    np.testing.assert_array_equal(updates[3].tensors[Role.STATE], [[0.0]])
    sent = [messages.read_metrics(m)[0] for m in server.messages(MessageType.METRICS)]
    assert [s["episode_reward"] for s in sent] == [3.0, 3.0]
    assert [s["episode_length"] for s in sent] == [3.0, 3.0]
    assert all(s["action_latency_client_ms"] > 0 for s in sent)
    assert server.wait_for(lambda: len(server.messages(MessageType.CLOSE)) == 1)


def test_max_episode_steps_truncates(server: FakeServer) -> None:
    runner = Countdown(agent(server), length=100, max_episode_steps=4)
    assert runner.run(max_episodes=1) == [4.0]
    last = server.messages(MessageType.UPDATE)[-1]
    assert last.flags == Flag.TRUNCATED


def test_episode_restart_starts_a_new_episode_without_counting_the_cut_one(
    server: FakeServer,
) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE and len(server.messages(MessageType.UPDATE)) == 6:
            return messages.action(msg.session_id, [0], restart=True)  # mid second episode
        return server.default(identity, msg)

    server.handler = handler
    runner = Countdown(agent(server), length=3)
    assert runner.run(max_episodes=2) == [3.0, 3.0]
    assert runner.restarts == 1 and runner.resets == 3
    updates = server.messages(MessageType.UPDATE)
    assert len(updates) == 4 + 2 + 4
    assert Role.REWARD not in updates[6].tensors  # the new episode's first step
    assert len(server.messages(MessageType.METRICS)) == 2


def test_stop_ends_run_between_steps(server: FakeServer) -> None:
    class Endless(Countdown):
        def step_env(self, action: Any) -> tuple[float, np.ndarray, bool, bool]:
            if len(self.actions) == 5:
                self.stop()  # as a signal handler would
            self.actions.append(action)
            return 1.0, np.zeros(1, np.float32), False, False

    runner = Endless(agent(server))
    assert runner.run() == []
    assert 5 <= len(runner.actions) < 50
    assert runner.closed
