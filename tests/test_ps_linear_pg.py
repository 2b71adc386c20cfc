"""The linear_pg test algorithm: its gradient, its plugin modules, and learning the bandit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ps_shards import clients, ps_config, running_shards

from relaax_zmq.config.sections import AlgorithmConfig
from relaax_zmq.core import AgentContext, ParameterServerContext, ParameterServerSpec, StepBatch
from relaax_zmq.envs.bandit import BanditEnv
from relaax_zmq.ps import load_spec
from relaax_zmq.runtime.registry import load_agent, load_parameter_server
from relaax_zmq.testing import LINEAR_PG_PATH, LINEAR_POLICY_PATH
from relaax_zmq.testing.linear_pg.policy import (
    advantages,
    discounted_returns,
    reinforce_gradient,
)

pytestmark = pytest.mark.timeout(60)


def test_reinforce_gradient_matches_autograd() -> None:
    rng = np.random.default_rng(0)
    state_size, actions, batch = 3, 4, 7
    params = rng.standard_normal((state_size + 1) * actions).astype(np.float32)
    states = rng.standard_normal((batch, state_size)).astype(np.float32)
    chosen = rng.integers(0, actions, batch)
    advantage = rng.standard_normal(batch)
    got = reinforce_gradient(params, states, chosen, advantage, actions)

    p = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    w = p[: state_size * actions].reshape(state_size, actions)
    logits = torch.tensor(states, dtype=torch.float64) @ w + p[state_size * actions :]
    logp = torch.log_softmax(logits, dim=1)[torch.arange(batch), torch.tensor(chosen)]
    loss = -(torch.tensor(advantage) * logp).mean()
    loss.backward()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_returns_restart_at_episode_ends_and_advantages_are_standardised() -> None:
    returns = discounted_returns(np.array([1.0, 1.0, 1.0, 1.0]), np.array([0, 1, 0, 0]), 0.5)
    np.testing.assert_allclose(returns, [1.5, 1.0, 1.5, 1.0])
    a = advantages(returns)
    assert abs(a.mean()) < 1e-12 and a.std() == pytest.approx(1.0)
    assert np.all(advantages(np.ones(3)) == 0)  # no variation: no push in any direction


def test_linear_pg_has_a_parameter_server_side_and_linear_policy_has_none() -> None:
    config = {"actions": 4, "state_size": 2, "seed": 3}
    context = ParameterServerContext(seed=5)
    spec = load_parameter_server(AlgorithmConfig(path=LINEAR_PG_PATH, config=config), context)
    assert isinstance(spec, ParameterServerSpec)
    assert spec.param_count == 12 and spec.allow_mixed_versions
    first, again = spec.initial_vector(5), spec.initial_vector(5)
    np.testing.assert_array_equal(first, again)  # every shard cuts the same vector
    assert not np.array_equal(first, spec.initial_vector(6))
    fixed = AlgorithmConfig(path=LINEAR_POLICY_PATH, config={"actions": 2})
    assert load_parameter_server(fixed, context) is None


def test_linear_pg_refuses_unknown_keys_and_needs_a_parameter_client() -> None:
    with pytest.raises(ValueError, match="hidden"):
        load_parameter_server(
            AlgorithmConfig(path=LINEAR_PG_PATH, config={"hidden": 3}), ParameterServerContext()
        )
    with pytest.raises(ValueError, match="ParameterClient"):
        load_agent(AlgorithmConfig(path=LINEAR_PG_PATH), AgentContext())


def _batch(ids, rewards, exploit: bool) -> StepBatch:
    n = len(ids)
    return StepBatch(
        np.asarray(ids, np.uint64),
        np.asarray(rewards, np.float32),
        np.ones((n, 1), np.float32),
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.full(n, exploit),
    )


@pytest.mark.parametrize("update", ["async", "sync"])
def test_the_agent_learns_the_best_arm_of_the_bandit_through_two_shards(update) -> None:
    algorithm = {"batch_size": 10, "gamma": 0.0, "learning_rate": 0.1, "optimizer": "adam"}
    app = ps_config(2, update=update, algorithm=algorithm)
    spec = load_spec(app)
    assert spec is not None
    env = BanditEnv()
    env.reset(seed=0)
    with (
        running_shards(app, spec) as shards,
        clients(app, "w0", count=spec.param_count, mixed=spec.allow_mixed_versions) as (c,),
    ):
        agent = load_agent(app.algorithm, AgentContext(algorithm, "w0", seed=0, parameters=c))
        assert c.wait_ready(5)
        ids = np.arange(1, 5)
        agent.open_sessions(ids, exploit=False)
        rewards = [np.nan] * 4
        for _ in range(600):
            actions = agent.act(_batch(ids, rewards, exploit=False))
            rewards = [env.step(int(a))[1] for a in actions]
            if update == "sync":
                c.wait_consistent(1.0, newer_than=agent.pushed_version)
        agent.open_sessions(np.array([99]), exploit=True)
        c.wait_ready(1)
        greedy = [int(agent.act(_batch([99], [np.nan], exploit=True))[0]) for _ in range(5)]
        stats = agent.stats()
        version = shards[0].stats()["version"]
    assert greedy == [3] * 5
    assert stats["pushes"] >= 100 and version >= 100
    assert stats["exploit_steps"] == 5
