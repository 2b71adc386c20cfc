"""The worker side of ``reinforce``: sample from the policy, learn from whole episodes.

Each training session's episode is kept until it ends (or reaches
``max_episode_length``, then it is cut and bootstrapped from the baseline). Once a
worker holds ``batch_size`` transitions of such episodes it computes, on the current
weights, the loss ``-mean(log pi(a|s) * A) + value_coef * mean((V(s) - G)^2) -
entropy_coef * mean(H)`` with returns ``G`` and advantages ``A = G - V(s)``
(standardised), and pushes its gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import TorchAgent, segment_episodes
from ..common.losses import normalize_advantages
from ..common.networks import ActorCritic, from_sections
from ..common.recorder import Recorder, Segment
from ..common.returns import discounted_returns
from .config import ReinforceConfig


def build_model(config: ReinforceConfig) -> ActorCritic:
    """Policy and baseline heads over separate torsos."""
    return from_sections(ActorCritic, config)


class ReinforceAgent(TorchAgent):
    """REINFORCE with a baseline (see the module docstring)."""

    def __init__(self, context: AgentContext, config: ReinforceConfig) -> None:
        super().__init__(
            context,
            config,
            build_model(config),
            name="reinforce",
            recorder=Recorder(None, max_episode_length=config.max_episode_length),
        )
        self.batch: list[Segment] = []

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        exploit = batch.exploit
        with torch.no_grad():
            distribution = self.model.distribution(self.model(observations).head)
        return self.choose(distribution, exploit).cpu().numpy(), {}

    def learn(self, segments: list[Segment]) -> None:
        self.batch += segments
        steps = sum(len(s) for s in self.batch)
        if steps < self.config.batch_size:
            return
        batch, self.batch = self.batch, []
        c = self.config
        states = torch.as_tensor(np.concatenate([s.states for s in batch]), device=self.device)
        actions = torch.as_tensor(np.concatenate([s.actions for s in batch]), device=self.device)
        output = self.model(states)
        values = output.value
        returns = torch.cat([self._returns(s) for s in batch])
        distribution = self.model.distribution(output.head)
        log_probs = distribution.log_prob(actions)
        advantages = returns - values.detach() if c.baseline else returns
        if c.normalize_advantages and len(advantages) > 1:
            advantages = normalize_advantages(advantages)
        policy_loss = -(log_probs * advantages).mean()
        value_loss = ((values - returns) ** 2).mean() if c.baseline else values.sum() * 0.0
        entropy = distribution.entropy().mean()
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        loss.backward()
        self.push_gradient(steps, segment_episodes(batch))
        self.record(
            {
                names.LOSS: loss.item(),
                names.POLICY_LOSS: policy_loss.item(),
                names.VALUE_LOSS: value_loss.item(),
                names.ENTROPY: entropy.item(),
            }
        )

    def _returns(self, segment: Segment) -> torch.Tensor:
        """Discounted returns, bootstrapped from the baseline when the episode did not end."""
        bootstrap = 0.0
        if not segment.terminal and self.config.baseline and segment.next_state is not None:
            with torch.no_grad():
                state = torch.as_tensor(segment.next_state[None], device=self.device)
                bootstrap = float(self.model(state).value[0])
        rewards = torch.as_tensor(segment.rewards, device=self.device)
        dones = torch.zeros_like(rewards)
        return discounted_returns(rewards, dones, self.config.gamma, bootstrap)
