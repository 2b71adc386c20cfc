"""Gorila DQN: replay buffers, n-step transitions, target sync, and learning on real shards."""

from __future__ import annotations

import time
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from algo_support import agent_in_serial, drive

from relaax_zmq.algorithms.common.config import parse_config
from relaax_zmq.algorithms.common.flat import flat_parameters
from relaax_zmq.algorithms.common.nstep import NStepAssembler
from relaax_zmq.algorithms.common.recorder import Segment
from relaax_zmq.algorithms.common.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from relaax_zmq.algorithms.dqn import ALGORITHM
from relaax_zmq.algorithms.dqn.agent import DqnAgent, build_model
from relaax_zmq.algorithms.dqn.config import DqnConfig
from relaax_zmq.core import AgentContext, StepBatch
from relaax_zmq.envs.bandit import BanditEnv

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}


def _fill(buffer: ReplayBuffer, count: int) -> None:
    for i in range(count):
        buffer.add(np.array([i], np.float32), i % 3, float(i), np.array([i + 1], np.float32), 0.9)


# -- replay ------------------------------------------------------------------------------------


def test_uniform_replay_samples_every_stored_transition_equally_and_keeps_them_whole() -> None:
    buffer = ReplayBuffer(10, (1,), "float32", np.random.default_rng(0))
    _fill(buffer, 10)
    batch = buffer.sample(20_000)
    counts = np.bincount(batch.indices, minlength=10)
    assert np.all(np.abs(counts / 20_000 - 0.1) < 0.012), counts
    assert np.array_equal(batch.states[:, 0], batch.indices.astype(np.float32))
    assert np.array_equal(batch.next_states[:, 0], batch.indices + 1.0)
    assert np.array_equal(batch.actions, batch.indices % 3)
    assert np.array_equal(batch.rewards, batch.indices.astype(np.float32))
    assert np.all(batch.weights == 1.0) and np.all(batch.dones == 0.0)


def test_terminal_transitions_are_stored_done_with_zero_next_state() -> None:
    buffer = ReplayBuffer(2, (2,), "float32", np.random.default_rng(0))
    slot = buffer.add(np.ones(2, np.float32), 1, 1.0, None, 0.99)
    assert buffer.dones[slot] == 1.0 and np.all(buffer.next_states[slot] == 0.0)
    with pytest.raises(ValueError, match="shape"):
        buffer.add(np.ones(3, np.float32), 1, 1.0, None, 0.99)


def test_sum_tree_finds_prefix_sums() -> None:
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert tree.root == 10.0
    found = tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99]))
    assert found.tolist() == [0, 0, 2, 2, 3, 3, 4, 4]


def test_prioritized_sampling_frequencies_match_the_priorities() -> None:
    buffer = PrioritizedReplayBuffer(8, (1,), "float32", np.random.default_rng(1), alpha=0.5)
    _fill(buffer, 7)
    td = np.array([1.0, 4.0, 0.0, 9.0, 16.0, 2.0, 0.25])
    buffer.update_priorities(np.arange(7), td)
    expected = (np.abs(td) + buffer.eps) ** 0.5
    expected /= expected.sum()
    assert np.allclose(buffer.probabilities(), expected)
    counts = np.zeros(7)
    for _ in range(200):
        counts += np.bincount(buffer.sample(256, beta=0.0).indices, minlength=7)
    assert np.allclose(counts / counts.sum(), expected, atol=0.01), counts / counts.sum()


def test_prioritized_importance_weights_are_normalised_by_the_largest() -> None:
    buffer = PrioritizedReplayBuffer(4, (1,), "float32", np.random.default_rng(2), alpha=1.0)
    _fill(buffer, 4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 4.0, 8.0]))
    probabilities = buffer.probabilities()
    for beta in (0.0, 0.4, 1.0):
        batch = buffer.sample(64, beta)
        raw = (4 * probabilities) ** -beta
        assert np.allclose(batch.weights, raw[batch.indices] / raw.max(), rtol=1e-5)
    assert buffer.sample(64, 1.0).weights.max() <= 1.0
    with pytest.raises(ValueError, match="beta"):
        buffer.sample(8, 1.5)


def test_priority_updates_and_new_transitions_get_the_largest_priority() -> None:
    buffer = PrioritizedReplayBuffer(4, (1,), "float32", np.random.default_rng(3), alpha=1.0)
    _fill(buffer, 2)
    assert np.allclose(buffer.probabilities(), [0.5, 0.5])  # both at the initial priority 1
    buffer.update_priorities(np.array([0, 1]), np.array([-3.0, 0.5]))
    assert buffer.max_priority == pytest.approx(3.0 + buffer.eps)
    _fill(buffer, 1)
    priorities = buffer.sums[np.arange(3)]
    assert np.allclose(priorities, [3.0, 0.5, 3.0], atol=1e-5)
    buffer.update_priorities(np.array([2]), np.array([0.0]))
    assert buffer.sums[np.array([2])][0] == pytest.approx(buffer.eps)
    assert buffer.minima.root == pytest.approx(buffer.eps)


def test_replay_wraps_around_overwriting_the_oldest() -> None:
    buffer = PrioritizedReplayBuffer(3, (1,), "float32", np.random.default_rng(4), alpha=1.0)
    _fill(buffer, 3)
    buffer.update_priorities(np.arange(3), np.array([5.0, 0.1, 0.1]))
    _fill(buffer, 2)  # transitions 0, 1 again: slots 0 and 1 overwritten
    assert len(buffer) == 3 and buffer.added == 5 and buffer.position == 2
    assert buffer.states[:, 0].tolist() == [0.0, 1.0, 2.0]
    buffer.add(np.array([7.0], np.float32), 1, 7.0, None, 1.0)
    assert buffer.states[:, 0].tolist() == [0.0, 1.0, 7.0] and buffer.position == 0
    # the overwritten slots take the largest priority seen (5), not their old ones
    assert np.allclose(buffer.sums[np.arange(3)], 5.0 + buffer.eps)
    assert set(buffer.sample(300).indices.tolist()) == {0, 1, 2}


# -- n-step transitions --------------------------------------------------------------------------


def _segments(sid: int, rewards: np.ndarray, end: str) -> list[Segment]:
    """One-transition segments of an episode of len(rewards) steps (states t = [t])."""
    out = []
    last = len(rewards) - 1
    for t, r in enumerate(rewards):
        terminal = end == "terminal" and t == last
        truncated = end == "truncated" and t == last
        out.append(
            Segment(
                sid,
                np.array([[t]], np.float32),
                np.array([t % 2]),
                np.array([r], np.float32),
                {},
                terminal,
                truncated,
                None if terminal else np.array([t + 1], np.float32),
            )
        )
    return out


def _reference(rewards: np.ndarray, n: int, gamma: float, terminal: bool) -> list[tuple]:
    transitions = []
    steps = len(rewards)
    for t in range(steps):
        m = min(n, steps - t)
        reward = 0.0
        for k in range(m):
            reward += gamma**k * float(rewards[t + k])
        ends = t + m == steps
        next_state = None if (terminal and ends) else float(t + m)
        transitions.append((float(t), reward, next_state, gamma**m))
    return transitions


@pytest.mark.parametrize("end", ["terminal", "truncated"])
@pytest.mark.parametrize("n", [1, 3, 7])
def test_n_step_transitions_match_a_loop_reference(n: int, end: str) -> None:
    rng = np.random.default_rng(n)
    rewards = rng.normal(size=5).astype(np.float32)
    assembler = NStepAssembler(n, 0.9)
    got = []
    for a, b in zip(_segments(1, rewards, end), _segments(2, rewards[::-1], end), strict=True):
        got += [(1, t) for t in assembler.add(a)] + [(2, t) for t in assembler.add(b)]
    for sid, episode in ((1, rewards), (2, rewards[::-1])):
        mine = [
            (
                float(t.state[0]),
                t.reward,
                None if t.next_state is None else float(t.next_state[0]),
                t.discount,
            )
            for s, t in got
            if s == sid
        ]
        expected = _reference(episode, n, 0.9, end == "terminal")
        assert len(mine) == len(expected)
        for m, e in zip(mine, expected, strict=True):
            assert m[0] == e[0] and m[2] == e[2]
            assert m[1] == pytest.approx(e[1], rel=1e-5) and m[3] == pytest.approx(e[3])
    assert not assembler.sessions


def test_n_step_flush_bootstraps_from_the_last_observation() -> None:
    assembler = NStepAssembler(3, 0.5)
    segments = _segments(1, np.array([1.0, 2.0, 4.0, 8.0], np.float32), "open")
    out = [t for s in segments for t in assembler.add(s)]
    assert [t.reward for t in out] == [1.0 + 1.0 + 1.0, 2.0 + 2.0 + 2.0]
    rest = assembler.flush(1)
    assert [(t.reward, float(t.next_state[0]), t.discount) for t in rest] == [
        (4.0 + 4.0, 4.0, 0.25),
        (8.0, 4.0, 0.5),
    ]
    assert assembler.flush(1) == []


# -- target sync (a fake ParameterClient) ------------------------------------------------------


class FakeParameters:
    """What ``TorchAgent`` asks of a ``ParameterClient``: weights set by the test."""

    def __init__(self, vector: np.ndarray) -> None:
        self.param_count = vector.size
        self.vector = vector
        self.version = 0
        self.global_step = 0
        self.ready = True
        self.stopping = False
        self.pushes: list[int] = []

    def poll(self) -> None:
        return None

    def weights(self) -> tuple[np.ndarray, np.ndarray, bool]:
        return self.vector, np.array([self.version]), True

    def statistics(self) -> None:
        return None

    def set(self, vector: np.ndarray, global_step: int) -> None:
        self.vector, self.global_step = vector, global_step
        self.version += 1

    def push(self, gradient: np.ndarray, base_versions: Any, steps: int, episodes: int) -> int:
        self.pushes.append(steps)
        return 1


def test_target_syncs_at_target_update_global_steps() -> None:
    config = {**CARTPOLE, "hidden_sizes": [8], "target_update": 100, "learning_starts": 10**6}
    model = build_model(parse_config(DqnConfig, config, "dqn"))
    fake = FakeParameters(flat_parameters(model))
    agent = ALGORITHM.make_agent(AgentContext(config=config, parameters=fake))  # type: ignore[arg-type]
    ids = np.array([1], np.uint64)
    agent.open_sessions(ids, exploit=False)

    def step(global_step: int) -> np.ndarray:
        """New weights at ``global_step``, one act; the target's weights after it."""
        fake.set(fake.vector + np.float32(1.0), global_step)
        batch = StepBatch(
            ids, np.array([0.0], np.float32), np.zeros((1, 4), np.float32), *[np.zeros(1, bool)] * 3
        )
        agent.act(batch)
        return flat_parameters(agent.target)

    synced, held = [], None
    for global_step in (0, 50, 99, 100, 150, 199, 260, 261, 300):
        target = step(global_step)
        if np.array_equal(target, fake.vector):
            synced.append(global_step)
            held = fake.vector.copy()
        else:  # unchanged since the last sync: the weights held then
            assert held is not None and np.array_equal(target, held)
    assert synced == [0, 100, 260, 300]
    assert agent.target_syncs == [0, 100, 260, 300]
    assert fake.pushes == []  # learning_starts not reached


# -- on real shards ----------------------------------------------------------------------------

BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [16],
    "gamma": 0.0,
    "learning_starts": 64,
    "batch_size": 32,
    "train_every": 4,
    "target_update": 50,
    "epsilon": {"kind": "linear", "initial": 1.0, "final": 0.1, "steps": 1000},
    "optimizer": {"learning_rate": 0.01},
}


def test_dqn_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("dqn", BANDIT) as run:
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=400)
        assert run.agent.counters.pushes >= 300
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always
        q = run.agent.model(torch.ones(1, 1)).detach()[0]
        assert int(q.argmax()) == 3, q


@pytest.mark.parametrize(
    "options",
    [{}, {"prioritized": True, "n_step": 3, "dueling": True, "double": False}],
    ids=["plain", "prioritized-nstep-dueling"],
)
def test_dqn_on_cartpole_pushes_finite_gradients_and_moves_the_weights(options) -> None:
    config = {
        **CARTPOLE,
        "hidden_sizes": [32],
        "learning_starts": 100,
        "batch_size": 32,
        "target_update": 64,
        **options,
    }
    with agent_in_serial("dqn", config) as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=150)
        run.parameters.wait_consistent(5, newer_than=0)
        after = run.parameters.weights()[0]
        agent = run.agent
        assert isinstance(agent, DqnAgent)
        assert agent.counters.pushes >= 200 and agent.counters.target_syncs >= 3
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0
        assert run.parameters.global_step >= 500  # the steps travel with the pushes
        if options.get("prioritized"):
            assert agent.replay.max_priority > 1.0  # priorities came from TD errors


class ImageEnv(gymnasium.Env):
    """Random 36x36x1 uint8 frames, two actions, episodes of 8 steps."""

    def __init__(self) -> None:
        self.observation_space = gymnasium.spaces.Box(0, 255, (36, 36, 1), np.uint8)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= 8, False, {}


def test_dqn_takes_image_observations_through_the_conv_torso() -> None:
    config = {
        "input": {"shape": [36, 36, 1], "dtype": "uint8"},
        "output": {"actions": 2},
        "hidden_sizes": [16],
        "learning_starts": 16,
        "batch_size": 8,
        "buffer_size": 64,
    }
    with agent_in_serial("dqn", config) as run:
        drive(run.agent, ImageEnv, sessions=2, steps=40)
        assert run.agent.replay.states.dtype == np.uint8
        assert run.agent.counters.pushes >= 20
        run.parameters.wait_consistent(5, newer_than=0)
        assert np.isfinite(run.parameters.weights()[0]).all()


# -- config --------------------------------------------------------------------------------------


def test_continuous_actions_are_refused() -> None:
    config = {"input": {"shape": [3]}, "output": {"low": [-2.0], "high": [2.0]}}
    with pytest.raises(ValueError, match=r"algorithm\.config\.output: dqn takes discrete actions"):
        parse_config(DqnConfig, config, "dqn")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({**CARTPOLE, "gama": 0.9}, "gama"),
        ({**CARTPOLE, "n_step": 0}, "n_step"),
        ({**CARTPOLE, "batch_size": 64, "buffer_size": 32}, "batch_size"),
        ({**CARTPOLE, "epsilon": 1.5}, "epsilon"),
        ({**CARTPOLE, "epsilon": {"kind": "linear", "initial": 1.0}}, "epsilon"),
        (
            {**CARTPOLE, "beta": {"kind": "linear", "initial": 0.4, "final": 2.0, "steps": 10}},
            "beta",
        ),
        ({**CARTPOLE, "target_update": 0}, "target_update"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(DqnConfig, config, "dqn")


# -- learning (slow) -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dqn_solves_cartpole() -> None:
    """Default config, one worker, 4 sessions, 50k steps; then 100 greedy episodes >= 475."""
    start = time.monotonic()
    with agent_in_serial("dqn", CARTPOLE) as run:
        trained = drive(run.agent, lambda: gymnasium.make("CartPole-v1"), sessions=4, steps=12_500)
        seconds = time.monotonic() - start
        greedy = drive(
            run.agent,
            lambda: gymnasium.make("CartPole-v1"),
            sessions=4,
            steps=30_000,
            exploit=True,
            seed=10_000,
            until=lambda d: len(d.returns) >= 100,
        )
        print(
            f"dqn CartPole: {trained.steps} steps in {seconds:.0f} s, "
            f"training mean of the last 100 episodes {trained.mean_last(100):.1f}, "
            f"greedy mean over {len(greedy.returns)} episodes {greedy.mean_last(100):.1f}"
        )
        assert len(greedy.returns) >= 100
        assert greedy.mean_last(100) >= 475.0, greedy.returns
