"""The worker side of ``ppo``: collect a rollout on one weight version, then learn in rounds.

Collecting: every training session acts on the same pinned weights; each action is
stored with the behaviour policy's log-probability and value. Segments are cut every
``rollout_length`` steps and at episode ends. Once the worker holds ``batch_size``
transitions (default ``rollout_length`` x training sessions), the next step cuts every
session's partial segment (bootstrapped from the observation it brings) and the
learning phase starts.

Learning: GAE(lambda) over each segment (values and bootstraps of the behaviour
weights), then ``epochs`` x ``minibatches`` steps. Step k waits for a consistent
version newer than the one of step k-1's push (``wait_consistent(newer_than=...)``),
loads it, computes the minibatch's PPO loss (clipped surrogate, optionally clipped
value loss, entropy bonus) on it and pushes the gradient: with ``update: sync`` the
shards average one gradient per worker per round and make one optimizer step, so every
worker's step k is round k of the phase. After the last push the worker waits for the
version that includes it and collects on it. Sessions keep getting actions throughout;
nothing is recorded while learning.

Waiting never blocks a worker for long: one ``act`` call starts learning steps for
``wait_timeout`` seconds, each wait for a version bounded by ``wait_timeout`` (one that
times out is counted in ``wait_timeouts``), and the phase continues at the next call; a phase that has waited ``round_timeout`` seconds for
one version is abandoned (logged, ``abandoned_phases``) and collection starts again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import AgentCounters, TorchAgent, segment_episodes
from ..common.losses import normalize_advantages, ppo_clip_loss, ppo_value_loss
from ..common.networks import ActorCritic, from_sections
from ..common.normalizer import RewardScaler
from ..common.recorder import Recorder, Segment
from ..common.segment_returns import VALUE, bootstrap_values
from .config import MIN_CLIP, PPOConfig
from .rollout import LOG_PROB, Rollout, build_rollout, minibatch_order

log = logging.getLogger(__name__)

#: The metric name of the share of clipped probability ratios (not a built-in name).
CLIP_FRACTION = "clip_fraction"


def build_model(config: PPOConfig) -> ActorCritic:
    """Policy and value heads (separate torsos unless ``shared_torso``)."""
    return from_sections(
        ActorCritic, config, shared_torso=config.shared_torso, init_log_std=config.init_log_std
    )


@dataclass
class _Phase:
    """A learning phase in progress."""

    rollout: Rollout
    order: list[np.ndarray]  # one index array per step
    steps: int  # environment steps of the rollout (sent with the first push)
    episodes: int
    newer_than: int  # the next step needs a consistent version above this one
    waiting_since: float
    next: int = 0  # steps pushed

    @property
    def pushed_all(self) -> bool:
        return self.next >= len(self.order)


@dataclass
class PPOCounters(AgentCounters):
    """What a ppo agent counts besides ``AgentCounters`` (its ``stats`` show them all)."""

    phases: int = 0  # learning phases started
    phases_done: int = 0  # ... that pushed every minibatch's gradient
    wait_timeouts: int = 0  # waits for a new version that ran out
    abandoned_phases: int = 0  # phases given up after round_timeout
    final_waits_missed: int = 0  # phases that pushed everything but missed the last round


class PPOAgent(TorchAgent):
    """PPO in synchronous rounds (see the module docstring)."""

    counters: PPOCounters

    def __init__(self, context: AgentContext, config: PPOConfig) -> None:
        if context.parameters is not None and not context.parameters.sync:
            raise ValueError(
                "ppo: expected parameter_servers.update: sync (one averaged step per round "
                "of every worker's minibatch), got async"
            )
        super().__init__(
            context,
            config,
            build_model(config),
            name="ppo",
            recorder=Recorder(config.rollout_length),
            reward_scaler=RewardScaler(config.gamma) if config.normalize_rewards else None,
        )
        self.clip = config.clip_schedule()
        self.learning_rate = config.optimizer.schedule()
        self.segments: list[Segment] = []  # the rollout being collected
        self.closing = False  # the next step cuts every partial segment: the rollout is full
        self.closed = False  # this step did: learn() starts the phase
        self.phase: _Phase | None = None
        self.counters = PPOCounters()

    # -- acting -------------------------------------------------------------------------------

    #: a learning phase changes the weights this step's actions are chosen with
    learns_before_acting = True

    def cut(self, batch: StepBatch, states: np.ndarray) -> list[Segment]:
        """Nothing while learning; every partial segment once the rollout is full."""
        if self.phase is not None:
            return []
        return self._close(batch, states) if self.closing else super().cut(batch, states)

    def recording(self, batch: StepBatch) -> bool:
        """Not while learning or stopping; notes when this step completes the rollout."""
        if self.phase is not None or self.parameters.stopping:
            return False
        self.closing = self._rollout_full(batch, batch.exploit)
        return True

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        output, actions, log_probs = self.sample(observations, batch.exploit)
        extras = {LOG_PROB: log_probs.cpu().numpy(), VALUE: output.value.cpu().numpy()}
        return actions.cpu().numpy(), extras

    def sync_weights(self) -> bool:
        """While collecting, keep the pinned version (only statistics follow the shards)."""
        if self.phase is not None or self.versions is None:
            return super().sync_weights()
        self.parameters.poll()
        self.apply_statistics()
        return True

    # -- collecting ---------------------------------------------------------------------------

    def _batch_target(self) -> int:
        if self.config.batch_size is not None:
            return self.config.batch_size
        training = sum(1 for t in self.recorder.sessions.values() if not t.exploit)
        return self.config.rollout_length * max(1, training)

    def _rollout_full(self, batch: StepBatch, exploit: np.ndarray) -> bool:
        """The actions just recorded complete the rollout once their rewards come."""
        recorded = int((~exploit & ~(batch.terminal | batch.truncated)).sum())
        held = sum(len(s) for s in self.segments) + self.recorder.waiting() + recorded
        return held >= self._batch_target()

    def _close(self, batch: StepBatch, states: np.ndarray) -> list[Segment]:
        """Step the recorder cutting every session of ``batch`` (bootstrapped from ``states``).

        Only real episode ends keep ``truncated``; sessions not in the batch lose their
        partial segments (their next observation is unknown).
        """
        cut_all = dataclasses.replace(batch, truncated=np.ones(len(batch), bool))
        segments = self.recorder.step(cut_all, states)
        truncated = dict(zip(batch.session_ids.tolist(), batch.truncated.tolist(), strict=True))
        self.recorder.end_episodes(np.fromiter(self.recorder.sessions, np.uint64))
        self.closing, self.closed = False, True
        return [
            dataclasses.replace(s, truncated=s.truncated and truncated[s.session_id])
            for s in segments
        ]

    def learn(self, segments: list[Segment]) -> None:
        """Collect the rollout; once complete, learn on it for a while at every step."""
        if self.phase is None:
            self._collect(segments)
        if self.phase is not None:
            self._learn_for_a_while()

    def _collect(self, segments: list[Segment]) -> None:
        """Add the segments cut this step to the rollout; start learning when it is complete."""
        self.segments += segments
        if not self.closed:
            return
        self.closed = False
        rollout, self.segments = self.segments, []
        if rollout and self.versions is not None and not self.parameters.stopping:
            self._start_phase(rollout)

    def _start_phase(self, segments: list[Segment]) -> None:
        c = self.config
        assert self.versions is not None
        rollout = build_rollout(
            segments,
            bootstrap_values(self.model, segments, self.device),  # the behaviour weights
            gamma=c.gamma,
            lam=c.gae_lambda,
            device=self.device,
        )
        self.phase = _Phase(
            rollout=rollout,
            order=minibatch_order(len(rollout), c.epochs, c.minibatches, self.rng),
            steps=len(rollout),
            episodes=segment_episodes(segments),
            newer_than=int(self.versions[0]) - 1,  # the collection's version will do
            waiting_since=time.monotonic(),
        )
        self.counters.phases += 1

    # -- learning -----------------------------------------------------------------------------

    def _learn_for_a_while(self) -> None:
        """Learning steps started within ``wait_timeout`` seconds, each wait bounded by it."""
        phase = self.phase
        assert phase is not None
        c = self.config
        deadline = time.monotonic() + c.wait_timeout
        while time.monotonic() < deadline:
            if self.parameters.stopping:  # no round will close any more
                self._end_phase()
                return
            if not self.parameters.wait_consistent(c.wait_timeout, newer_than=phase.newer_than):
                self._timed_out(phase)
                return
            super().sync_weights()  # loads the consistent version just waited for
            assert self.versions is not None
            if int(self.versions[0]) <= phase.newer_than:  # a shard moved on meanwhile
                continue
            if phase.pushed_all:
                self._end_phase()
                return
            self._step(phase)
            phase.newer_than = int(self.versions[0])
            phase.waiting_since = time.monotonic()

    def _timed_out(self, phase: _Phase) -> None:
        self.counters.wait_timeouts += 1
        waited = time.monotonic() - phase.waiting_since
        log.debug("ppo: no version > %d after %.2f s", phase.newer_than, waited)
        if waited < self.config.round_timeout:
            return
        if phase.pushed_all:  # every gradient went: collect on what there is
            self.counters.final_waits_missed += 1
        else:
            self.counters.abandoned_phases += 1
            log.warning(
                "ppo: abandoned a learning phase after step %d of %d: no weights newer "
                "than version %d for %.1f s",
                phase.next,
                len(phase.order),
                phase.newer_than,
                waited,
            )
        self._end_phase()

    def _end_phase(self) -> None:
        """Back to collecting, on the newest weights (pinned from now on)."""
        phase = self.phase
        assert phase is not None
        if phase.pushed_all:
            self.counters.phases_done += 1
        self.phase = None
        super().sync_weights()

    def _step(self, phase: _Phase) -> None:
        """One minibatch's gradient on the loaded weights, pushed (one sync round)."""
        c = self.config
        data = phase.rollout
        index = torch.as_tensor(phase.order[phase.next], device=self.device)
        global_step = self.parameters.global_step
        output = self.model(data.states[index])
        distribution = self.model.distribution(output.head)
        advantages = data.advantages[index]
        if c.normalize_advantages and len(advantages) > 1:
            advantages = normalize_advantages(advantages)
        clip = max(self.clip(global_step), MIN_CLIP)
        surrogate = ppo_clip_loss(
            distribution.log_prob(data.actions[index]), data.log_probs[index], advantages, clip
        )
        value_loss = ppo_value_loss(
            output.value, data.values[index], data.returns[index], c.clip_value
        )
        entropy = distribution.entropy().mean()
        loss = surrogate.loss + c.value_coef * value_loss - c.entropy_coef * entropy
        loss.backward()
        first = phase.next == 0
        self.push_gradient(phase.steps if first else 0, phase.episodes if first else 0)
        phase.next += 1
        self.record(
            {
                names.LOSS: loss.item(),
                names.POLICY_LOSS: surrogate.loss.item(),
                names.VALUE_LOSS: value_loss.item(),
                names.ENTROPY: entropy.item(),
                names.KL_DIVERGENCE: surrogate.approx_kl.item(),
                CLIP_FRACTION: surrogate.clip_fraction.item(),
                names.LEARNING_RATE: self.learning_rate(global_step),
            }
        )

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "learning": int(self.phase is not None)}
