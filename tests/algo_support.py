"""Algorithms under test: a built-in agent in serial mode, or with real shards, driven directly.

``agent_in_serial`` builds the app config and the agent as a worker does, on the
in-process ``SerialParameters`` (the shards' own update code, no sockets, nothing
started): what algorithm tests use. ``agent_on_shards`` does the same with freshly
started shards (threads, tcp loopback) and a ``ParameterClient``, for the tests that
compare the two;
``drive`` steps N gymnasium environments through ``Agent.act`` with the exchange's
episode-boundary convention, as a ``VectorRunner`` would, without the broker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from test_ps_shards import ps_section, running_shards

from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.core import Agent, AgentContext, ParameterLink, ParameterServerSpec, StepBatch
from relaax_zmq.ps import ParameterClient, load_spec
from relaax_zmq.ps.shard_core import ShardCore
from relaax_zmq.runtime.registry import load_agent
from relaax_zmq.serial import SerialParameters


@dataclass
class Running:
    """An agent on its parameter link, and the shards' cores behind it."""

    config: AppConfig
    agent: Agent
    parameters: ParameterLink
    shards: Sequence[ShardCore]

    def shard_stats(self, i: int = 0) -> dict[str, Any]:
        """Shard ``i``'s figures (``Shard.stats``)."""
        return self.shards[i].figures(time.monotonic())


def algorithm_app(name: str, config: dict[str, Any], *, shards: int = 1, **ps: Any) -> AppConfig:
    """An app running the built-in ``name`` with ``config`` on ``shards`` shards (free ports)."""
    return parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit", "seed": 3},
            "algorithm": {"name": name, "config": config},
            "workers": {"count": 1},
            "parameter_servers": ps_section(shards, **ps),
        }
    )


def _app_and_spec(
    name: str, config: dict[str, Any], shards: int, ps: dict[str, Any]
) -> tuple[AppConfig, ParameterServerSpec]:
    app = algorithm_app(name, config, shards=shards, **ps)
    spec = load_spec(app)
    assert spec is not None, f"{name} has no parameter-server side"
    return app, spec


@contextmanager
def agent_in_serial(
    name: str, config: dict[str, Any], *, shards: int = 1, **ps: Any
) -> Iterator[Running]:
    """The agent of ``name`` on ``SerialParameters``: no sockets, no threads, no daemons."""
    app, spec = _app_and_spec(name, config, shards, ps)
    parameters = SerialParameters(app, spec, "w0")
    context = AgentContext(config=app.algorithm.config, seed=3, parameters=parameters)
    agent = load_agent(app.algorithm, context)
    yield Running(app, agent, parameters, parameters.cores)
    agent.close()


@contextmanager
def agent_on_shards(
    name: str, config: dict[str, Any], *, shards: int = 1, **ps: Any
) -> Iterator[Running]:
    """The agent of ``name``, its ``ParameterClient`` synced with freshly started shards."""
    app, spec = _app_and_spec(name, config, shards, ps)
    with running_shards(app) as running:
        client = ParameterClient(
            app,
            spec.param_count,
            "w0",
            allow_mixed_versions=spec.allow_mixed_versions,
            statistics_size=spec.statistics_size,
        )
        try:
            assert client.wait_consistent(10), "no weights from the shards"
            context = AgentContext(config=app.algorithm.config, seed=3, parameters=client)
            agent = load_agent(app.algorithm, context)
            yield Running(app, agent, client, running)
            agent.close()
        finally:
            client.close()


@dataclass
class Driven:
    """What ``drive`` saw: every finished episode's return, and the steps taken."""

    returns: list[float] = field(default_factory=list)
    steps: int = 0

    def mean_last(self, count: int) -> float:
        tail = self.returns[-count:]
        return sum(tail) / len(tail) if tail else -math.inf


def drive(
    agent: Agent,
    make_env: Callable[[], gymnasium.Env],
    *,
    sessions: int,
    steps: int,
    exploit: bool = False,
    seed: int = 0,
    until: Callable[[Driven], bool] | None = None,
) -> Driven:
    """Step ``sessions`` environments ``steps`` times through ``agent.act`` (or until ``until``)."""
    envs = [make_env() for _ in range(sessions)]
    ids = np.arange(1, sessions + 1, dtype=np.uint64) + (1000 if exploit else 0)
    agent.open_sessions(ids, exploit=exploit)
    states = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    rewards = np.full(sessions, np.nan, np.float32)
    terminal = np.zeros(sessions, bool)
    truncated = np.zeros(sessions, bool)
    totals = np.zeros(sessions)
    driven = Driven()
    for _ in range(steps):
        batch = StepBatch(
            ids,
            rewards.copy(),
            states,
            terminal.copy(),
            truncated.copy(),
            np.full(sessions, exploit),
        )
        actions = agent.act(batch)
        ended = terminal | truncated
        next_states = []
        for i, env in enumerate(envs):
            if ended[i]:  # the action for an ended row is discarded; a new episode starts
                state, _ = env.reset()
                rewards[i], terminal[i], truncated[i], totals[i] = np.nan, False, False, 0.0
            else:
                state, reward, term, trunc, _ = env.step(_env_action(env, actions[i]))
                rewards[i], terminal[i], truncated[i] = reward, term, trunc
                totals[i] += reward
                if term or trunc:
                    driven.returns.append(float(totals[i]))
            next_states.append(state)
        states = np.stack(next_states).astype(np.asarray(states).dtype)
        driven.steps += sessions
        if until is not None and until(driven):
            break
    agent.close_sessions(ids)
    for env in envs:
        env.close()
    return driven


def _env_action(env: gymnasium.Env, action: np.ndarray) -> Any:
    if isinstance(env.action_space, gymnasium.spaces.Discrete):
        return int(action)
    return np.asarray(action, np.float32)
