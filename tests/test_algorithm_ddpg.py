"""DDPG / TD3 on real shards: parameter groups, delayed actor, per-worker targets, smoke and learning runs."""

from __future__ import annotations

import time

import gymnasium
import numpy as np
import pytest
import torch
from algo_support import agent_in_serial, drive

from relaax_zmq.algorithms.common.config import parse_config
from relaax_zmq.algorithms.common.flat import FlatModel, param_count
from relaax_zmq.algorithms.common.recorder import Segment
from relaax_zmq.algorithms.common.replay import LocalReplay, ReplayBatch, ReplayBuffer
from relaax_zmq.algorithms.ddpg import ALGORITHM
from relaax_zmq.algorithms.ddpg.config import DDPGConfig
from relaax_zmq.algorithms.ddpg.model import build_model
from relaax_zmq.core import ParameterServerContext, StepBatch

pytestmark = pytest.mark.timeout(120)

PENDULUM = {
    "input": {"shape": [3]},
    "output": {"low": [-2.0], "high": [2.0]},
    "hidden_sizes": [32, 32],
    "batch_size": 32,
    "learning_starts": 100,
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _flat_offsets(flat: FlatModel, module: torch.nn.Module) -> set[int]:
    """Indices in ``flat``'s vector of every element of ``module``'s parameters."""
    base = flat.vector.data_ptr()
    found: set[int] = set()
    for p in module.parameters():
        start = (p.data_ptr() - base) // p.element_size()
        found.update(range(start, start + p.numel()))
    return found


def test_param_group_covers_exactly_the_actor_in_the_flat_vector() -> None:
    config = {**PENDULUM, "actor_lr_scale": 0.25}
    spec = ALGORITHM.make_parameter_server(config, ParameterServerContext())
    assert spec is not None
    (group,) = spec.optimizer.groups
    model = build_model(parse_config(DDPGConfig, config, "ddpg"))
    flat = FlatModel(model)
    assert spec.param_count == flat.param_count
    actor = _flat_offsets(flat, model.actor)
    critic = _flat_offsets(flat, model.critic)
    assert actor == set(range(group.offset, group.offset + group.count))
    assert len(actor) == param_count(model.actor) and not actor & critic
    assert len(actor | critic) == flat.param_count
    assert group.lr_scale == 0.25 and spec.optimizer.hyperparameters["lr"] == 1e-3


def _random_transitions(n: int, rng: np.random.Generator) -> ReplayBatch:
    return ReplayBatch(
        states=rng.normal(size=(n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_states=rng.normal(size=(n, 3)).astype(np.float32),
        dones=(rng.random(n) < 0.1).astype(np.float32),
        discounts=np.full(n, 0.99, np.float32),
        indices=np.arange(n),
        weights=np.ones(n, np.float32),
    )


def test_actor_gradient_is_zero_on_steps_where_the_actor_is_not_due() -> None:
    with agent_in_serial("ddpg", PENDULUM) as run:
        agent = run.agent
        assert agent.sync_weights()
        batch = _random_transitions(64, np.random.default_rng(0))
        split = param_count(agent.model.actor)  # the actor comes first (group test)

        def gradient(update_actor: bool) -> np.ndarray:
            agent.generator.manual_seed(1)  # the same smoothing noise for both
            agent.compute_gradient(batch, update_actor=update_actor)
            vector = agent.flat.grad_vector().cpu().numpy().copy()
            agent.flat.zero_grad()
            return vector

        critic_only, both = gradient(False), gradient(True)
        assert not critic_only[:split].any()
        assert np.abs(critic_only[split:]).sum() > 0
        assert np.abs(both[:split]).sum() > 0
        # the actor's loss puts nothing into the critic's part
        np.testing.assert_allclose(both[split:], critic_only[split:], rtol=1e-6, atol=1e-7)


def test_targets_move_by_polyak_towards_the_weights_the_worker_holds() -> None:
    config = {**PENDULUM, "tau": 0.1}
    with agent_in_serial("ddpg", config) as run:
        agent = run.agent
        assert agent.sync_weights()
        held = agent.flat.vector.clone()
        assert torch.equal(agent.target_flat.vector, held)  # targets start at the weights
        old = held + 1.0
        agent.target_flat.load(old)
        agent.update_targets()
        expected = 0.9 * old + 0.1 * held
        torch.testing.assert_close(agent.target_flat.vector, expected)
        assert torch.equal(agent.flat.vector, held)  # the shared weights are untouched


def test_exploit_sessions_act_with_the_actor_alone_and_training_sessions_add_noise() -> None:
    config = {**PENDULUM, "exploration_noise": 0.5, "random_exploration": False}
    with agent_in_serial("ddpg", config) as run:
        agent = run.agent
        ids = np.array([1, 2], np.uint64)
        agent.open_sessions(ids[:1], exploit=True)
        agent.open_sessions(ids[1:], exploit=False)
        states = np.zeros((2, 3), np.float32)
        nan = np.full(2, np.nan, np.float32)
        no = np.zeros(2, bool)
        actions = agent.act(StepBatch(ids, nan, states, no, no, np.array([True, False])))
        with torch.no_grad():
            greedy = agent.model.actor(torch.as_tensor(states)).numpy()
        assert actions[0] == pytest.approx(greedy[0], abs=1e-6)
        assert abs(float(actions[1, 0] - greedy[1, 0])) > 1e-3
        assert agent.recorder.sessions[1].pending is None  # exploit rows record nothing
        assert agent.recorder.sessions[2].pending is not None


def test_terminal_stores_done_and_truncation_bootstraps_from_the_final_observation() -> None:
    def segment(terminal: bool, truncated: bool) -> Segment:
        last = None if terminal else np.full(3, 9.0, np.float32)
        states = np.arange(6, dtype=np.float32).reshape(2, 3)
        actions = np.zeros((2, 1), np.float32)
        rewards = np.ones(2, np.float32)
        return Segment(1, states, actions, rewards, {}, terminal, truncated, last)

    first, second = segment(True, False), segment(False, True)
    everything = ReplayBuffer(
        4, (3,), np.float32, np.random.default_rng(0), action_shape=(1,), action_dtype=np.float32
    )
    LocalReplay(everything, 1, 0.9).feed([first, second])
    np.testing.assert_array_equal(everything.dones, [0, 1, 0, 0])
    np.testing.assert_array_equal(everything.next_states[1], np.zeros(3))
    np.testing.assert_array_equal(everything.next_states[0], [3, 4, 5])
    np.testing.assert_array_equal(everything.next_states[3], [9, 9, 9])
    np.testing.assert_allclose(everything.discounts, 0.9)
    replay = ReplayBuffer(
        3, (3,), np.float32, np.random.default_rng(0), action_shape=(1,), action_dtype=np.float32
    )
    feeder = LocalReplay(replay, 1, 0.9)
    feeder.feed([first])
    feeder.feed([second])
    assert len(feeder) == 3 and replay.position == 1
    np.testing.assert_array_equal(replay.dones, [0, 1, 0])  # row 0: overwritten by the newest
    np.testing.assert_array_equal(replay.next_states[0], [9, 9, 9])
    batch = replay.sample(5)
    assert batch.states.shape == (5, 3) and batch.actions.shape == (5, 1)
    assert batch.actions.dtype == np.float32
    with pytest.raises(ValueError, match=r"replay action: expected shape \(1,\), got \(2,\)"):
        replay.add(np.zeros(3), np.zeros(2), 0.0, None, 1.0)


class _Scalars:
    """Stands in for the worker's ``MetricsSender``: keeps every scalar recorded."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def scalar(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)


def _smoke(config: dict, make_env, *, steps: int, sessions: int) -> _Scalars:
    scalars = _Scalars()
    with agent_in_serial("ddpg", config) as run:
        run.agent.metrics = scalars
        before = run.parameters.weights()[0].copy()
        drive(run.agent, make_env, sessions=sessions, steps=steps)
        run.parameters.wait_consistent(5, newer_than=0)
        after = run.parameters.weights()[0]
        counters = run.agent.counters
        assert counters.pushes >= 20
        assert counters.actor_steps == (counters.gradient_steps + 1) // 2  # policy_delay 2
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0
        assert not torch.equal(run.agent.target_flat.vector, run.agent.flat.vector)
    return scalars


def test_pendulum_smoke_pushes_moves_finite_weights_and_records_the_losses() -> None:
    config = {**PENDULUM, "gradient_steps": 3}  # odd: actor and critic-only steps mix per call
    scalars = _smoke(config, lambda: gymnasium.make("Pendulum-v1"), steps=80, sessions=2)
    assert {"loss", "policy_loss", "value_loss", "q_value"} <= set(scalars.values)
    assert all(np.isfinite(v).all() for v in scalars.values.values())


def test_mountain_car_continuous_smoke() -> None:
    config = {**PENDULUM, "input": {"shape": [2]}, "output": {"low": [-1.0], "high": [1.0]}}
    _smoke(config, lambda: gymnasium.make("MountainCarContinuous-v0"), steps=75, sessions=4)


def test_plain_ddpg_has_one_critic_and_updates_the_actor_every_step() -> None:
    config = {**PENDULUM, "twin": False, "policy_delay": 1, "target_noise": 0.0}
    with agent_in_serial("ddpg", config) as run:
        assert run.agent.model.critic.q2_net is None
        drive(run.agent, lambda: gymnasium.make("Pendulum-v1"), sessions=2, steps=70)
        counters = run.agent.counters
        assert counters.gradient_steps >= 20
        assert counters.actor_steps == counters.gradient_steps


def test_discrete_actions_are_refused() -> None:
    with pytest.raises(ValueError, match=r"output: ddpg acts in continuous spaces only"):
        parse_config(DDPGConfig, {"input": {"shape": [4]}, "output": {"actions": 2}}, "ddpg")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tau": 0}, "tau"),
        ({"policy_delay": 0}, "policy_delay"),
        ({"polcy_delay": 2}, "polcy_delay"),
        ({"exploration_noise": {"kind": "cosine"}}, "exploration_noise"),
        ({"exploration_noise": -0.1}, "exploration_noise"),
        ({"hidden_sizes": []}, "hidden_sizes"),
        ({"actor_lr_scale": 0}, "actor_lr_scale"),
        ({"input": {"shape": [84, 84, 3], "dtype": "uint8"}}, "input"),
    ],
)
def test_bad_config_is_refused_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(DDPGConfig, {**PENDULUM, **change}, "ddpg")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_td3_learns_pendulum() -> None:
    """TD3 (twin critics, smoothing, policy delay 2), 4 sessions on one worker, 2 async shards."""
    config = {
        "input": {"shape": [3]},
        "output": {"low": [-2.0], "high": [2.0]},
        "hidden_sizes": [64, 64],
        "batch_size": 128,
    }
    start = time.monotonic()
    with agent_in_serial("ddpg", config, shards=2) as run:
        driven = drive(
            run.agent,
            lambda: gymnasium.make("Pendulum-v1"),
            sessions=4,
            steps=5000,
            until=lambda d: len(d.returns) >= 10 and d.mean_last(10) >= -200,
        )
        seconds = time.monotonic() - start
        print(
            f"pendulum td3: {driven.steps} steps, {len(driven.returns)} episodes, {seconds:.0f} s"
        )
        assert driven.mean_last(10) >= -200, driven.returns[-10:]
        greedy = drive(
            run.agent, lambda: gymnasium.make("Pendulum-v1"), sessions=4, steps=201, exploit=True
        )
        print(f"pendulum td3 greedy: {greedy.returns}")
        assert len(greedy.returns) == 4 and greedy.mean_last(4) >= -250, greedy.returns
        assert run.shard_stats(0)["dropped_nonfinite"] == 0
