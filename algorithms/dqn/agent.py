"""The worker side of ``dqn``: Gorila DQN (Nair et al. 2015) on the parameter servers.

Each worker acts epsilon-greedily (epsilon follows ``config.epsilon`` over the worker's
own training steps; exploit sessions act greedily), turns its sessions' transitions into
(n-step) transitions (``LocalReplay``) and keeps them in a LOCAL replay (uniform or
prioritized). Once the replay holds ``learning_starts`` transitions, every
``train_every`` transitions it runs ``gradient_steps`` rounds of: refresh the weights
from the shards, sample a minibatch, compute the gradient of the Huber TD loss
``mean(w * huber(r + discount * (1 - done) * Q_target(s', a*) - Q(s, a)))`` on those
weights (``a*`` from the online net with ``double``, else from the target), push it
(each push is one optimizer step on the shards; the environment steps since the last
push travel with it) and, with prioritized replay, set the sampled priorities to the new
TD errors.

The target network is synchronised through the shards: whenever shard 0's global step
(``ParameterClient.global_step``) enters a new multiple of ``target_update``, the worker
copies the weights it holds into its target network, so every worker's target is the
shards' weights at about the same global step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import AgentCounters, WindowedAgent, segment_episodes
from ..common.flat import load_flat
from ..common.losses import dqn_td_targets, td_loss
from ..common.networks import QNetwork, from_sections
from ..common.recorder import Recorder, Segment
from ..common.replay import LocalReplay, PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer
from .config import DqnConfig


def build_model(config: DqnConfig) -> QNetwork:
    """The online Q network (the shards' vector); the target network is a copy of it."""
    return from_sections(QNetwork, config, dueling=config.dueling)


@dataclass
class DqnCounters(AgentCounters):
    """What a dqn agent counts besides ``AgentCounters`` (its ``stats`` show them all)."""

    gradients: int = 0  # gradients computed (pushed or not)
    target_syncs: int = 0  # target network reloads


class DqnAgent(WindowedAgent):
    """Gorila DQN (see the module docstring)."""

    counters: DqnCounters

    def __init__(self, context: AgentContext, config: DqnConfig) -> None:
        super().__init__(
            context,
            config,
            build_model(config),
            name="dqn",
            recorder=Recorder(1),
        )
        self.target = build_model(config).to(self.device).requires_grad_(False)
        self.target_period: int | None = None  # global_step // target_update at the last sync
        self.target_syncs: list[int] = []  # the global steps at which the target was synced
        self.epsilon = config.epsilon_schedule()
        self.beta = config.beta_schedule()
        dtype = np.float32 if config.input.normalize else self.observation.dtype
        shape = self.observation.shape
        self.replay: ReplayBuffer = (
            PrioritizedReplayBuffer(
                config.buffer_size,
                shape,
                dtype,
                self.rng,
                alpha=config.alpha,
                eps=config.priority_eps,
            )
            if config.prioritized
            else ReplayBuffer(config.buffer_size, shape, dtype, self.rng)
        )
        self.feeder = LocalReplay(self.replay, config.n_step, config.gamma)
        self.unreported = {"steps": 0, "episodes": 0}  # what the next push covers
        self.due = 0  # transitions towards the next training round
        self.counters = DqnCounters()

    # -- acting -------------------------------------------------------------------------------

    @property
    def training_steps(self) -> int:
        """Steps of this worker's training sessions (the epsilon and beta schedules' clock)."""
        return self.counters.steps - self.counters.exploit_steps

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        exploit = batch.exploit
        with torch.no_grad():
            actions = self.model(observations).argmax(dim=1).cpu().numpy()
        epsilon = self.epsilon(self.training_steps)
        explore = ~exploit & (self.rng.random(len(actions)) < epsilon)
        if explore.any():
            assert self.action.n is not None
            actions[explore] = self.rng.integers(0, self.action.n, int(explore.sum()))
        self.record({names.EPSILON: epsilon})
        return actions, {}

    # -- sessions -----------------------------------------------------------------------------

    def flush_windows(self, session_ids: np.ndarray) -> None:
        self.feeder.flush(session_ids.tolist())

    # -- learning -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:
        self.feeder.feed(segments)
        self.unreported["steps"] += sum(len(s) for s in segments)
        self.unreported["episodes"] += segment_episodes(segments)
        self.due += sum(len(s) for s in segments)
        self.sync_target()
        if self.replay.added < max(self.config.learning_starts, 1):
            self.due = 0
            return
        while self.due >= self.config.train_every:
            self.due -= self.config.train_every
            for _ in range(self.config.gradient_steps):
                if not self.train_step():
                    self.due = 0
                    return

    def sync_target(self) -> bool:
        """Copy the weights held into the target when the global step entered a new
        multiple of ``target_update`` (or at the first weights); True when it did."""
        if self.versions is None:
            return False
        period = self.parameters.global_step // self.config.target_update
        if self.target_period is not None and period <= self.target_period:
            return False
        load_flat(self.target, self.flat.vector)
        self.target_period = period
        self.target_syncs.append(self.parameters.global_step)
        self.counters.target_syncs += 1
        return True

    def train_step(self) -> bool:
        """One gradient on the newest weights held, pushed; False when none could go."""
        if self.parameters.stopping or not self.sync_weights():
            return False
        self.sync_target()
        c = self.config
        if isinstance(self.replay, PrioritizedReplayBuffer):
            batch = self.replay.sample(c.batch_size, self.beta(self.training_steps))
        else:
            batch = self.replay.sample(c.batch_size)
        loss, td_errors, q_mean = self._loss(batch)
        loss.backward()
        steps, episodes = self.unreported["steps"], self.unreported["episodes"]
        pushed = self.push_gradient(steps, episodes)
        if pushed:
            self.unreported = {"steps": 0, "episodes": 0}
        self.counters.gradients += 1
        if isinstance(self.replay, PrioritizedReplayBuffer):
            self.replay.update_priorities(batch.indices, td_errors)
        self.record({names.LOSS: loss.item(), names.Q_VALUE: q_mean})
        return True

    def _loss(self, batch: ReplayBatch) -> tuple[torch.Tensor, np.ndarray, float]:
        """(Huber TD loss with graph, TD errors, mean Q of the taken actions)."""
        c = self.config

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, device=self.device)

        states, next_states = tensor(batch.states), tensor(batch.next_states)
        q = self.model(states).gather(1, tensor(batch.actions)[:, None]).squeeze(1)
        with torch.no_grad():
            next_target = self.target(next_states)
            next_online = self.model(next_states) if c.double else None
        targets = dqn_td_targets(
            tensor(batch.rewards),
            tensor(batch.dones),
            next_online,
            next_target,
            tensor(batch.discounts),
            double=c.double,
        )
        weights = tensor(batch.weights) if c.prioritized else None
        result = td_loss(q, targets, weights, c.huber_delta)
        return result.loss, result.td_errors.cpu().numpy(), float(q.detach().mean())

    def stats(self) -> dict[str, float]:
        return {
            **super().stats(),
            "replay": len(self.replay),
            "global_step": self.parameters.global_step,
        }
