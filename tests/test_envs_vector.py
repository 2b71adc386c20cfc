"""VectorRunner: N gymnasium environments as one block, one batched message per step."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from fake_server import FakeServer

from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.envs.gym_runner import GymRunner
from relaax_zmq.envs.vector_runner import VectorBlocks, VectorRunner
from relaax_zmq.errors import AgentError
from relaax_zmq.protocol import ErrorCode, Flag, Message, MessageType, Role, messages

OPTIONS = {"request_timeout": 2.0, "retry_deadline": 2.0}


def cartpoles(server: FakeServer, n: int, **options) -> VectorRunner:
    proxy = VectorAgentProxy(server.endpoint, n, **OPTIONS)
    return VectorRunner.make(proxy, lambda: gymnasium.make("CartPole-v1"), **options)


def test_each_step_is_one_batched_update_with_per_session_episode_ends(
    server: FakeServer,
) -> None:
    runner = cartpoles(server, 3, seed=10)
    finished = runner.run(max_episodes=2)
    assert [len(e) for e in runner.episodes] == [2, 2, 2]
    assert sorted(finished) == sorted(sum(runner.episodes, []))

    updates = server.messages(MessageType.UPDATE)
    assert len(server.messages(MessageType.INIT)) == 1
    assert all(u.session_count == 3 and u.flags == 0 for u in updates)
    assert all(u.tensors[Role.STATE].shape == (3, 4) for u in updates)
    assert Role.REWARD not in updates[0].tensors
    ends = [u.tensors[Role.EPISODE_FLAGS] for u in updates]
    assert sum(int(np.count_nonzero(e)) for e in ends) >= 6
    for before, after, update in zip(ends, ends[1:], updates[1:], strict=False):
        rewards = update.tensors[Role.REWARD]
        # the row after an episode end starts a new episode: no reward (NaN), no flags
        np.testing.assert_array_equal(np.isnan(rewards), before != 0)
        assert not np.any(after[before != 0])
        np.testing.assert_array_equal(rewards[before == 0], 1.0)

    metrics = [messages.read_metrics(m)[0] for m in server.messages(MessageType.METRICS)]
    assert metrics and all("episode_reward" in m for m in metrics)
    # CartPole pays 1 per step: an episode's reward is its length, the means agree
    assert all(m["episode_reward"] == m["episode_length"] for m in metrics)


def test_each_environment_matches_a_single_session_with_its_seed(server: FakeServer) -> None:
    vector = cartpoles(server, 3, seed=20)
    vector.run(max_episodes=2)
    for i in range(3):
        single = GymRunner(AgentProxy(server.endpoint, **OPTIONS), "CartPole-v1", seed=20 + i)
        assert single.run(max_episodes=2) == vector.episodes[i]


def test_restart_resets_every_environment(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.UPDATE and len(server.messages(MessageType.UPDATE)) == 4:
            return messages.action(msg.session_id, np.zeros(msg.session_count), restart=True)
        return server.default(identity, msg)

    server.handler = handler
    runner = cartpoles(server, 2, seed=0, max_episode_steps=6)
    runner.run(max_episodes=1)
    assert runner.restarts == 1
    assert runner.episodes == [[6.0], [6.0]]
    updates = server.messages(MessageType.UPDATE)
    assert Role.REWARD not in updates[4].tensors  # every environment starts again
    terminal, truncated = messages.read_episode_ends(updates[-1])  # both truncated together:
    assert truncated.all() and not terminal.any()  # (the block's boundary, in the header)
    assert updates[-1].flags == Flag.TRUNCATED and Role.EPISODE_FLAGS not in updates[-1].tensors


def test_environment_count_must_match_the_block(server: FakeServer) -> None:
    proxy = VectorAgentProxy(server.endpoint, 2, **OPTIONS)
    with pytest.raises(ValueError, match="1 environments for a block of 2"):
        VectorRunner(proxy, [gymnasium.make("CartPole-v1")])


def test_blocks_run_together_and_share_their_episodes(server: FakeServer) -> None:
    finished: list[float] = []
    first = cartpoles(server, 2, seed=0, finished=finished)
    second = cartpoles(server, 3, seed=2, finished=finished)
    blocks = VectorBlocks([first, second])
    assert blocks.run(max_episodes=2) is finished
    assert sorted(finished) == sorted(sum(first.episodes + second.episodes, []))
    assert len(finished) == 10
    assert blocks.steps == first.steps + second.steps >= sum(finished)  # done ones step on
    assert sorted(m.session_count for m in server.messages(MessageType.INIT)) == [2, 3]


def test_a_failing_block_stops_the_others_and_its_error_is_raised(server: FakeServer) -> None:
    def handler(identity: bytes, msg: Message):
        if msg.type == MessageType.INIT and msg.session_count == 3:
            return messages.error(ErrorCode.AUTH, "who are you")
        return server.default(identity, msg)

    server.handler = handler
    finished: list[float] = []
    healthy = cartpoles(server, 2, seed=0, finished=finished)
    blocks = VectorBlocks([healthy, cartpoles(server, 3, seed=2, finished=finished)])
    with pytest.raises(AgentError, match="who are you"):
        blocks.run()  # without the failure the healthy block would run until stopped


def test_blocks_must_share_one_finished_list(server: FakeServer) -> None:
    with pytest.raises(ValueError, match="share one finished list"):
        VectorBlocks([cartpoles(server, 1), cartpoles(server, 1)])
