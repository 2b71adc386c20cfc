"""The worker side of ``ddpg``: act with noise, replay locally, push actor-and-critic gradients.

Acting: the actor's action ``mu(s)`` plus Gaussian noise of std ``exploration_noise``
(relative to each dimension's half range, annealed over the global step when it is a
schedule), clipped to the bounds; exploit sessions act with ``mu(s)`` alone. Until a
worker's replay holds ``learning_starts`` transitions its training sessions act
uniformly at random (``random_exploration``).

Learning: every training transition (``Recorder(1)``: one step with its next
observation) goes to the worker's own uniform replay (``LocalReplay``, 1-step); a termination stores ``done``
(no bootstrap), a truncation bootstraps from the final observation. Every
``train_every`` transitions, ``gradient_steps`` steps each sample ``batch_size``
transitions and push ONE gradient over the flat vector holding both networks:

- critic: ``sum_i mean((Q_i(s, a) - y)^2)`` with ``y = r + gamma (1 - done) min_i
  Q'_i(s', a')`` (one Q without ``twin``), ``a' = mu'(s')`` smoothed with clipped
  noise (``target_noise``, TD3) — every step;
- actor: ``-mean(Q_1(s, mu(s)))``, its gradient only into the actor's parameters — on
  every ``policy_delay``-th step; on the others the actor's part of the gradient is zero.

The shards learn the actor's range at ``actor_lr_scale`` times the critic's rate
(``model.param_groups``). Note that Adam on the shards still moves the actor a little
on steps where its gradient is zero (its momentum), unlike TD3's separate optimizer.

Target networks are per worker: each worker keeps its own copy ``mu', Q'``, starts it
at the shared weights it holds when it first learns, and after each of its learning steps on which
the actor was due (every step with ``policy_delay`` 1, as TD3 delays both) moves it by
polyak averaging (``tau``) towards the shared weights it then holds — the targets
follow the shards' weights, not a local learner. After each push the worker waits up to
``weights_timeout`` seconds for the shards' next weights, so that consecutive gradient
steps build on each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import AgentCounters, TorchAgent, segment_episodes
from ..common.flat import FlatModel
from ..common.losses import ddpg_critic_targets, polyak, target_policy_smoothing
from ..common.recorder import Recorder, Segment
from ..common.replay import LocalReplay, ReplayBatch, ReplayBuffer
from .config import DDPGConfig
from .model import build_model

#: Seconds between polls while waiting for the shards' next weights.
POLL_STEP = 0.0005


@dataclass
class DDPGCounters(AgentCounters):
    """What a ddpg agent counts besides ``AgentCounters`` (its ``stats`` show them all)."""

    gradient_steps: int = 0  # learning steps (critic gradients)
    actor_steps: int = 0  # ... that also updated the actor
    weights_timeouts: int = 0  # waits for the pushed gradient's weights that ran out


class DDPGAgent(TorchAgent):
    """DDPG / TD3 with worker-local replay and targets (see the module docstring)."""

    counters: DDPGCounters

    def __init__(self, context: AgentContext, config: DDPGConfig) -> None:
        super().__init__(
            context,
            config,
            build_model(config),
            name="ddpg",
            recorder=Recorder(1),
        )
        self.target = build_model(config).to(self.device)
        self.target_flat = FlatModel(self.target)
        self.target.requires_grad_(False)
        low, high = np.array(self.action.low), np.array(self.action.high)
        self.half_range = ((high - low) / 2).astype(np.float32)
        self.middle = ((high + low) / 2).astype(np.float32)
        self.noise = config.noise_schedule()
        self.replay = ReplayBuffer(
            config.buffer_size,
            self.observation.shape,
            np.float32,
            self.rng,
            action_shape=(self.action.size,),
            action_dtype=np.float32,
        )
        self.feeder = LocalReplay(self.replay, 1, config.gamma)
        self.untrained = 0  # transitions since the last training
        self.unpushed_steps = 0  # environment steps and episodes the next push reports
        self.unpushed_episodes = 0
        self.learn_steps = 0
        self.counters = DDPGCounters()

    # -- acting -------------------------------------------------------------------------------

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        exploit = batch.exploit
        with torch.no_grad():
            actions = self.model.actor(observations).cpu().numpy()
        explore = ~exploit
        count = int(explore.sum())
        if count == 0:
            return actions, {}
        if self.config.random_exploration and len(self.replay) < self.config.learning_starts:
            actions[explore] = self.random_actions(count)
            return actions, {}
        std = self.noise(self.parameters.global_step) * self.half_range
        noisy = actions[explore] + self.rng.normal(size=(count, self.action.size)) * std
        actions[explore] = np.clip(noisy, self.action.low, self.action.high)
        return actions.astype(np.float32), {}

    # -- learning -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:
        if segments:
            self.feeder.feed(segments)
            steps = sum(len(s) for s in segments)
            self.untrained += steps
            self.unpushed_steps += steps
            self.unpushed_episodes += segment_episodes(segments)
        c = self.config
        if len(self.replay) < c.learning_starts or self.versions is None:
            self.untrained = 0
            return
        trainings, self.untrained = divmod(self.untrained, c.train_every)
        figures = []
        for _ in range(trainings * c.gradient_steps):
            if self.parameters.stopping:
                break
            figures.append(self.learning_step())
        self.record(_means(figures))

    def learning_step(self) -> dict[str, float]:
        """One sampled batch: compute, push, wait for the next weights, move the targets."""
        update_actor = self.learn_steps % self.config.policy_delay == 0
        batch = self.replay.sample(self.config.batch_size)
        figures = self.compute_gradient(batch, update_actor=update_actor)
        assert self.versions is not None
        base = self.versions.copy()
        pushed = self.push_gradient(self.unpushed_steps, self.unpushed_episodes)
        self.unpushed_steps = self.unpushed_episodes = 0
        self.learn_steps += 1
        self.counters.gradient_steps += 1
        self.counters.actor_steps += int(update_actor)
        if pushed and self.config.weights_timeout > 0 and not self._await_weights(base):
            self.counters.weights_timeouts += 1
        self.sync_weights()
        if update_actor:
            self.update_targets()
        return figures

    def compute_gradient(self, batch: ReplayBatch, *, update_actor: bool) -> dict[str, float]:
        """Accumulate this batch's critic (and, when ``update_actor``, actor) gradient in
        the model's ``.grad``; the actor's part stays zero otherwise. Returns the figures."""
        c = self.config
        states, actions, rewards, next_states, dones, discounts = (
            torch.as_tensor(x, device=self.device)
            for x in (
                batch.states,
                batch.actions,
                batch.rewards,
                batch.next_states,
                batch.dones,
                batch.discounts,
            )
        )
        with torch.no_grad():
            next_actions = self.target.actor(next_states)
            if c.target_noise > 0:
                next_actions = self._smooth(next_actions)
            next_q = self.target.critic(next_states, next_actions)
            q1_next, q2_next = next_q if c.twin else (next_q, None)
            targets = ddpg_critic_targets(rewards, dones, q1_next, q2_next, discounts)
        q = self.model.critic(states, actions)
        qs = q if c.twin else (q,)
        value_loss = sum(F.mse_loss(qi, targets) for qi in qs)
        assert isinstance(value_loss, torch.Tensor)
        value_loss.backward()
        figures = {names.VALUE_LOSS: value_loss.item(), names.Q_VALUE: qs[0].mean().item()}
        loss = figures[names.VALUE_LOSS]
        if update_actor:
            policy_loss = -self.model.critic.q1(states, self.model.actor(states)).mean()
            policy_loss.backward(inputs=list(self.model.actor.parameters()))
            figures[names.POLICY_LOSS] = policy_loss.item()
            loss += figures[names.POLICY_LOSS]
        figures[names.LOSS] = loss
        return figures

    def _smooth(self, actions: torch.Tensor) -> torch.Tensor:
        """TD3 target smoothing, in actions scaled to [-1, 1] (noise relative to the range)."""
        half = torch.as_tensor(self.half_range, device=actions.device)
        middle = torch.as_tensor(self.middle, device=actions.device)
        c = self.config
        scaled = target_policy_smoothing(
            (actions - middle) / half,
            c.target_noise,
            c.target_noise_clip,
            -1.0,
            1.0,
            self.generator,
        )
        return middle + half * scaled

    def _await_weights(self, base: np.ndarray) -> bool:
        """Poll until every shard's weights are newer than ``base``; False on timeout."""
        deadline = time.monotonic() + self.config.weights_timeout
        while True:
            self.parameters.poll()
            if self.parameters.stopping or (self.parameters.weights()[1] > base).all():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_STEP)

    # -- target networks ----------------------------------------------------------------------

    def on_new_weights(self) -> None:
        if self.learn_steps == 0:  # until its first step, a worker's targets are the weights
            self.target_flat.load(self.flat.vector)

    def update_targets(self) -> None:
        """Move the targets by ``tau`` towards the shared weights the worker holds now."""
        with torch.no_grad():
            self.target_flat.load(
                polyak(self.target_flat.vector, self.flat.vector, self.config.tau)
            )

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "replay": len(self.replay)}


def _means(figures: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's mean over the steps that have it (the policy loss: actor steps only)."""
    keys = {k for f in figures for k in f}
    return {k: float(np.mean([f[k] for f in figures if k in f])) for k in keys}
