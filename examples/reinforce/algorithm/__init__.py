"""REINFORCE with a learned baseline: a whole algorithm in one file (docs/algorithms.md).

Each training session's episode is recorded until it ends; once a worker holds
``batch_size`` transitions of finished episodes, it computes on its current weights
``-mean(log pi(a|s) * A) + value_coef * mean((V(s) - G)^2)`` with discounted returns
``G`` and standardised advantages ``A = G - V(s)``, and pushes the gradient to the
parameter servers, which apply it with Adam. Load it with ``algorithm.path``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relaax_zmq.algorithms.common.agent import TorchAgent, segment_episodes
from relaax_zmq.algorithms.common.config import InputConfig, OptimizerConfig, OutputConfig
from relaax_zmq.algorithms.common.networks import ActorCritic
from relaax_zmq.algorithms.common.recorder import Recorder, Segment
from relaax_zmq.algorithms.common.returns import discounted_returns
from relaax_zmq.algorithms.common.server import torch_algorithm
from relaax_zmq.core import AgentContext, StepBatch, names, option


@dataclass(frozen=True, kw_only=True)
class Config:
    """``algorithm.config``: every key checked, errors name the full key."""

    input: InputConfig = option(doc="observations")
    output: OutputConfig = option(doc="actions")
    optimizer: OptimizerConfig = option(factory=lambda: OptimizerConfig(learning_rate=1e-2))
    hidden_sizes: tuple[int, ...] = option((64,), doc="hidden layers of policy and baseline")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    batch_size: int = option(1000, ge=1, doc="transitions of finished episodes per gradient")
    value_coef: float = option(0.5, ge=0, doc="weight of the baseline's squared error")


def build_model(config: Config) -> ActorCritic:
    """Policy and baseline heads; its parameters are the shards' flat vector."""
    return ActorCritic(config.input.spec(), config.output.spec(), hidden_sizes=config.hidden_sizes)


class Reinforce(TorchAgent):
    """The worker side: sample actions, learn from whole episodes."""

    def __init__(self, context: AgentContext, config: Config) -> None:
        recorder = Recorder(None)  # a segment is a whole episode
        super().__init__(context, config, build_model(config), name="example", recorder=recorder)
        self.episodes: list[Segment] = []

    def policy(self, observations: torch.Tensor, batch: StepBatch) -> tuple[np.ndarray, dict]:
        with torch.no_grad():
            distribution = self.model.distribution(self.model(observations).head)
        return self.choose(distribution, batch.exploit).cpu().numpy(), {}

    def learn(self, segments: list[Segment]) -> None:
        self.episodes += segments
        steps = sum(len(s) for s in self.episodes)
        if steps < self.config.batch_size:
            return
        episodes, self.episodes = self.episodes, []
        states = torch.as_tensor(np.concatenate([s.states for s in episodes]))
        actions = torch.as_tensor(np.concatenate([s.actions for s in episodes]))
        returns = torch.cat([self.returns(s) for s in episodes])
        output = self.model(states)
        advantages = returns - output.value.detach()
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_probs = self.model.distribution(output.head).log_prob(actions)
        policy_loss = -(log_probs * advantages).mean()
        value_loss = ((output.value - returns) ** 2).mean()
        (policy_loss + self.config.value_coef * value_loss).backward()
        self.push_gradient(steps, segment_episodes(episodes))
        self.record({names.POLICY_LOSS: policy_loss.item(), names.VALUE_LOSS: value_loss.item()})

    def returns(self, episode: Segment) -> torch.Tensor:
        """Discounted returns to the episode's end (bootstrapped when it was cut short)."""
        bootstrap = 0.0
        if not episode.terminal and episode.next_state is not None:
            with torch.no_grad():
                bootstrap = float(self.model(torch.as_tensor(episode.next_state[None])).value[0])
        rewards = torch.as_tensor(episode.rewards)
        return discounted_returns(rewards, torch.zeros_like(rewards), self.config.gamma, bootstrap)


ALGORITHM = torch_algorithm("reinforce-example", Config, Reinforce, build_model)
