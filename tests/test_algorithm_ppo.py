"""PPO on real shards in sync rounds: learns the bandit, steps CartPole and Pendulum in rounds,
waits for every new version, abandons a phase rather than blocking, refuses async and bad config."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium
import numpy as np
import pytest
from algo_support import Running, agent_in_serial, agent_on_shards, drive

from relaax_zmq.core import AgentContext
from relaax_zmq.envs.bandit import BanditEnv
from relaax_zmq.ps import ParameterClient, load_spec
from relaax_zmq.runtime.registry import load_agent

pytestmark = pytest.mark.timeout(120)

BANDIT = {
    "input": {"shape": [1]},
    "output": {"actions": 4},
    "hidden_sizes": [8],
    "gamma": 0.0,
    "rollout_length": 10,
    "epochs": 4,
    "optimizer": {"learning_rate": 0.01},
}
CARTPOLE = {
    "input": {"shape": [4]},
    "output": {"actions": 2},
    "rollout_length": 16,
    "epochs": 3,
    "minibatches": 2,
}
PENDULUM = {
    "input": {"shape": [3], "normalize": True},
    "output": {"low": [-2.0], "high": [2.0]},
    "rollout_length": 50,
    "epochs": 2,
    "minibatches": 2,
    "clip_value": 0.5,
    "normalize_rewards": True,
}


def cartpole() -> gymnasium.Env:
    return gymnasium.make("CartPole-v1")


def pendulum() -> gymnasium.Env:
    return gymnasium.make("Pendulum-v1")


def rounds_so_far(agent: Any, per_phase: int) -> int:
    """The pushes of the finished phases and of the one in progress."""
    phase = agent.phase
    return agent.counters.phases_done * per_phase + (0 if phase is None else phase.next)


def recorded_pushes(run: Running) -> list[int]:
    """Record the base version of every push the agent makes (shard 0's)."""
    bases: list[int] = []
    push = run.parameters.push

    def recording(gradient, base_versions, steps, episodes):
        bases.append(int(base_versions[0]))
        return push(gradient, base_versions, steps, episodes)

    run.parameters.push = recording  # type: ignore[method-assign]
    return bases


def test_ppo_learns_the_best_bandit_arm() -> None:
    with agent_in_serial("ppo", BANDIT, update="sync") as run:
        drive(run.agent, lambda: BanditEnv(episode_length=10), sessions=4, steps=400)
        assert run.agent.counters.pushes >= 40
        greedy = drive(
            run.agent, lambda: BanditEnv(episode_length=10), sessions=2, steps=50, exploit=True
        )
        assert greedy.mean_last(10) >= 9.0, greedy.returns  # arm 3 pays +1 almost always


def test_ppo_on_cartpole_makes_epochs_times_minibatches_rounds_per_rollout() -> None:
    with agent_in_serial("ppo", CARTPOLE, update="sync") as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, cartpole, sessions=4, steps=300)
        agent = run.agent
        assert agent.counters.phases_done >= 4
        assert agent.counters.pushes == rounds_so_far(agent, 3 * 2)
        assert run.parameters.wait_consistent(5, newer_than=agent.counters.pushes - 1)
        stats = run.shard_stats(0)
        assert stats["version"] == agent.counters.pushes  # one worker: one push, one round
        phases = agent.counters.phases  # each rollout's steps are sent once, >= 4 x 16
        assert phases * 4 * 16 <= stats["global_step"] < phases * (4 * 16 + 4)
        after = run.parameters.weights()[0]
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert stats["dropped_nonfinite"] == stats["dropped_stale"] == 0
        assert agent.counters.wait_timeouts == agent.counters.abandoned_phases == 0


def test_ppo_pushes_each_step_on_a_new_version() -> None:
    with agent_in_serial("ppo", CARTPOLE, update="sync") as run:
        bases = recorded_pushes(run)
        drive(run.agent, cartpole, sessions=4, steps=200)
        assert len(bases) >= 12
        assert all(b < c for b, c in zip(bases, bases[1:], strict=False)), bases
        stats = run.shard_stats(0)
        assert stats["dropped_duplicate"] == stats["dropped_stale"] == 0


def test_ppo_on_pendulum_pushes_finite_gradients_with_gaussian_actions() -> None:
    with agent_in_serial("ppo", PENDULUM, update="sync") as run:
        before = run.parameters.weights()[0].copy()
        drive(run.agent, pendulum, sessions=2, steps=420)
        agent = run.agent
        assert agent.counters.phases_done >= 4
        assert agent.counters.pushes == rounds_so_far(agent, 2 * 2)
        run.parameters.wait_consistent(5, newer_than=agent.counters.pushes - 1)
        after = run.parameters.weights()[0]
        assert np.isfinite(after).all() and not np.array_equal(before, after)
        assert run.shard_stats(0)["dropped_nonfinite"] == 0
        assert run.parameters.statistics()[0] > 0  # observation statistics reached shard 0


@contextmanager
def second_worker(run: Running, name: str = "w1") -> Iterator[ParameterClient]:
    """Another worker's link to the same shards, known to them (used by one thread at a time)."""
    spec = load_spec(run.config)
    assert spec is not None
    client = ParameterClient(
        run.config, spec.param_count, name, statistics_size=spec.statistics_size
    )
    try:
        deadline = time.monotonic() + 10
        while run.shard_stats(0)["workers_live"] < 2:  # the shards count it in rounds
            assert time.monotonic() < deadline, "the second worker never reached the shard"
            run.parameters.poll()
            client.wait_consistent(0.05)
        yield client
    finally:
        client.close()


def test_ppo_abandons_a_phase_when_the_round_never_closes() -> None:
    config = {**CARTPOLE, "wait_timeout": 0.02, "round_timeout": 0.1}
    # a long liveness: the silent worker stays live however loaded the machine is
    with agent_on_shards(
        "ppo", config, update="sync", sync_workers=2, heartbeat_liveness=50
    ) as run:
        act, durations = run.agent.act, []

        def timed(batch):
            started = time.monotonic()
            actions = act(batch)
            durations.append(time.monotonic() - started)
            return actions

        run.agent.act = timed
        with second_worker(run) as silent:  # alive (heartbeats) but never pushes
            stop = threading.Event()

            def heartbeat() -> None:
                while not stop.is_set():
                    silent.poll()
                    time.sleep(0.02)

            beating = threading.Thread(target=heartbeat)
            beating.start()
            try:
                driven = drive(run.agent, cartpole, sessions=4, steps=120)
            finally:
                stop.set()
                beating.join()
        counters = run.agent.counters
        assert driven.steps == 480 and max(durations) < 1.0, max(durations)  # never blocked
        assert counters.abandoned_phases >= 2 and counters.wait_timeouts >= 2
        assert counters.phases_done == 0
        version = run.shard_stats(0)["version"]
        assert version < counters.pushes // 2  # rounds wait for the silent worker


def test_ppo_two_workers_stay_in_step() -> None:
    # a long liveness: a worker stalled by a loaded machine still counts in every round
    with agent_on_shards(
        "ppo", CARTPOLE, update="sync", sync_workers=2, heartbeat_liveness=50
    ) as run:
        with second_worker(run) as client:
            context = AgentContext(
                config=run.config.algorithm.config, worker_id="w1", seed=3, parameters=client
            )
            other = load_agent(run.config.algorithm, context)
            done = threading.Event()
            thread = threading.Thread(
                target=drive,
                args=(other, cartpole),
                kwargs={"sessions": 4, "steps": 10_000, "until": lambda _: done.is_set()},
            )
            thread.start()
            try:
                drive(run.agent, cartpole, sessions=4, steps=250)
            finally:
                done.set()
                thread.join()
            other.close()
        agents = [run.agent, other]
        stats = run.shard_stats(0)
        assert stats["dropped_stale"] == stats["dropped_duplicate"] == 0
        assert all(a.counters.abandoned_phases == 0 for a in agents)
        assert all(a.counters.phases_done >= 3 for a in agents)
        rounds = [a.counters.pushes for a in agents]
        assert abs(rounds[0] - rounds[1]) <= 1 and stats["version"] >= min(rounds) - 1, rounds


def test_ppo_refuses_async_parameter_servers() -> None:
    with pytest.raises(ValueError, match="update: sync"):
        with agent_in_serial("ppo", CARTPOLE):
            pass


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output": {"actions": 2}}, "input"),
        ({**CARTPOLE, "epoch": 3}, "epoch"),
        ({**CARTPOLE, "gae_lambda": 1.5}, "gae_lambda"),
        ({**CARTPOLE, "clip": 0}, "clip"),
        ({**CARTPOLE, "clip": {"kind": "cosine"}}, "clip"),
        ({**CARTPOLE, "minibatches": 0}, "minibatches"),
        ({**CARTPOLE, "clip_value": -1.0}, "clip_value"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, message) -> None:
    from relaax_zmq.algorithms.common.config import parse_config
    from relaax_zmq.algorithms.ppo.config import PPOConfig

    with pytest.raises(ValueError, match=message):
        parse_config(PPOConfig, config, "ppo")


def _learning_run(
    config: dict[str, Any], make_env: Any, *, sessions: int, steps: int, last: int, target: float
) -> tuple[float, int, float]:
    """(mean return of the last ``last`` episodes, environment steps, seconds) to ``target``."""
    started = time.monotonic()
    with agent_in_serial("ppo", config, update="sync") as run:
        driven = drive(
            run.agent,
            make_env,
            sessions=sessions,
            steps=steps // sessions,
            until=lambda d: len(d.returns) >= last and d.mean_last(last) >= target,
        )
        assert run.agent.counters.abandoned_phases == 0
    seconds = time.monotonic() - started
    mean = driven.mean_last(last)
    print(f"ppo: mean return {mean:.1f} after {driven.steps} steps, {seconds:.1f} s")
    return mean, driven.steps, seconds


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ppo_solves_cartpole_with_the_default_config() -> None:
    config = {"input": {"shape": [4]}, "output": {"actions": 2}}
    mean, steps, _ = _learning_run(
        config, cartpole, sessions=8, steps=150_000, last=100, target=475.0
    )
    assert mean >= 475.0, (mean, steps)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ppo_swings_up_the_pendulum() -> None:
    config = {
        "input": {"shape": [3], "normalize": True},
        "output": {"low": [-2.0], "high": [2.0]},
        "gamma": 0.9,
        "gae_lambda": 0.95,
        "rollout_length": 256,
        "epochs": 10,
        "minibatches": 8,
        "clip": 0.2,
        "normalize_rewards": True,
        "optimizer": {"learning_rate": 1e-3, "eps": 1e-5},
    }
    mean, steps, _ = _learning_run(
        config, pendulum, sessions=8, steps=300_000, last=20, target=-200.0
    )
    assert mean >= -200.0, (mean, steps)
