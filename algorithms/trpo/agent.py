"""The worker side of ``trpo``: rollouts on one version, a TRPO step, a value fit, a delta.

The shards serve the flat vector of an ``ActorCritic`` with separate policy and value
torsos. Every training step is tagged with the version it acted on; a worker keeps the
transitions of the current version only (a piece begun on an older one keeps its
newer part) until it holds ``rollout_length`` of them. Then, on those weights:

- advantages by GAE (``gamma``, ``gae_lambda``) from the values recorded at acting time,
  each piece bootstrapped from the value of the observation after it unless it terminated;
- the policy part takes one TRPO step (``common.trpo.trpo_step``): surrogate
  ``-mean(exp(log pi(a|s) - log pi_old(a|s)) * A) - entropy_coef * mean(H)``, natural
  gradient by conjugate gradient on the Fisher matrix of ``mean KL(pi_old || pi)``, scaled
  to ``max_kl`` and backtracked until the surrogate improves and the KL stays under
  ``1.5 * max_kl``;
- the value part is fitted to the GAE returns by ``value_epochs`` of Adam over
  ``value_minibatches`` minibatches; the Adam state lives on the worker, across rollouts.

The worker pushes the delta ``old - new`` of the whole vector: shards running plain SGD
with learning rate 1.0 land on ``new``. With ``update: sync`` a round averages one delta
per worker, so the shards land on the mean of the workers' new vectors: approximately
the TRPO step of the union of their batches (to first order, for batches of equal size
and similar Fisher matrices; the line search checks each worker's KL, not that of the
mean step). The worker then waits (at most ``sync_timeout`` seconds, counted in ``sync_timeouts`` when it runs
out) for the next version before it records again. ``update: async`` is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import AgentCounters, TorchAgent, segment_episodes, stack_states
from ..common.config import DELTA_OPTIMIZER
from ..common.distributions import Categorical, DiagGaussian
from ..common.losses import normalize_advantages
from ..common.networks import ActorCritic, from_sections
from ..common.recorder import Recorder, Segment
from ..common.segment_returns import VALUE, bootstrap_values, segments_gae
from ..common.trpo import TRPOResult, trpo_step
from .config import TRPOConfig

#: Parameters of the value network inside ``ActorCritic`` (the rest is the policy).
VALUE_PREFIXES = ("value_torso.", "value_head.")


def build_model(config: TRPOConfig) -> ActorCritic:
    """Policy and value networks over separate torsos (one flat vector)."""
    return from_sections(ActorCritic, config, shared_torso=False)


class PolicyLayout:
    """Where the policy's parameters lie in the model's flat vector.

    ``index`` (P,) holds their flat positions (in ``parameters()`` order); a policy
    vector x (P,) is those elements in that order, and ``params(x)`` the views of x
    by parameter name, for ``torch.func.functional_call``.
    """

    def __init__(self, model: ActorCritic) -> None:
        self.parts: list[tuple[str, int, torch.Size]] = []
        positions: list[torch.Tensor] = []
        offset = 0
        for name, p in model.named_parameters():
            if not name.startswith(VALUE_PREFIXES):
                self.parts.append((name, p.numel(), p.shape))
                positions.append(torch.arange(offset, offset + p.numel()))
            offset += p.numel()
        self.index = torch.cat(positions)

    def params(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        start = 0
        for name, count, shape in self.parts:
            found[name] = x[start : start + count].view(shape)
            start += count
        return found


@dataclass(frozen=True)
class Rollout:
    """One rollout as tensors: states (N, *obs), actions (N, ...), the rest (N,)."""

    states: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


@dataclass(frozen=True)
class TRPOUpdate:
    """What the last push was: the version it started from, the vectors, the step's figures."""

    version: int
    old: np.ndarray
    new: np.ndarray
    states: torch.Tensor
    step: TRPOResult


def current_part(segment: Segment, version: int) -> Segment | None:
    """The transitions of ``segment`` acted on ``version`` (its tail), or None if none were."""
    keep = segment.extras["version"] == version
    if keep.all():
        return segment
    if not keep[-1]:
        return None
    first = len(keep) - int(np.argmin(keep[::-1]))  # versions only grow along a segment
    return dataclasses.replace(
        segment,
        states=segment.states[first:],
        actions=segment.actions[first:],
        rewards=segment.rewards[first:],
        extras={k: v[first:] for k, v in segment.extras.items()},
    )


@dataclass
class TRPOCounters(AgentCounters):
    """What a trpo agent counts besides ``AgentCounters`` (its ``stats`` show them all)."""

    stale_steps: int = 0  # steps dropped: collected on weights that had gone
    sync_timeouts: int = 0  # waits for the next version that ran out
    line_search_failures: int = 0  # TRPO steps whose line search failed (no step taken)


class TRPOAgent(TorchAgent):
    """TRPO-GAE on synchronous parameter servers (see the module docstring)."""

    counters: TRPOCounters

    def __init__(self, context: AgentContext, config: TRPOConfig) -> None:
        super().__init__(
            context,
            config,
            build_model(config),
            name="trpo",
            recorder=Recorder(config.segment_length),
            optimizer=DELTA_OPTIMIZER,
        )
        if not self.parameters.sync:
            raise ValueError(
                "trpo: expected parameter_servers.update 'sync' (each round averages one "
                "TRPO step per worker, all on one version), got 'async'"
            )
        self.config = config
        self.layout = PolicyLayout(self.model)
        value_params = [
            p for name, p in self.model.named_parameters() if name.startswith(VALUE_PREFIXES)
        ]
        self.value_optimizer = torch.optim.Adam(value_params, lr=config.value_lr)
        self.batch: list[Segment] = []
        self.last_update: TRPOUpdate | None = None
        self.counters = TRPOCounters()

    # -- acting -------------------------------------------------------------------------------

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        output, actions, log_probs = self.sample(observations, batch.exploit)
        extras = {
            "log_prob": log_probs.cpu().numpy(),
            VALUE: output.value.cpu().numpy(),
            "version": np.full(len(batch), self._version(), np.int64),
        }
        return actions.cpu().numpy(), extras

    def _version(self) -> int:
        assert self.versions is not None
        return int(self.versions[0])

    # -- learning -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:
        if self.versions is None:
            return
        version = self._version()
        for segment in segments:
            part = current_part(segment, version)
            kept = 0 if part is None else len(part)
            self.counters.stale_steps += len(segment) - kept
            if part is not None:
                self.batch.append(part)
        stale = [s for s in self.batch if int(s.extras["version"][0]) != version]
        if stale:  # collected on a version that has gone since (a sync wait ran out)
            self.counters.stale_steps += sum(len(s) for s in stale)
            self.batch = [s for s in self.batch if int(s.extras["version"][0]) == version]
        if sum(len(s) for s in self.batch) < self.config.rollout_length:
            return
        batch, self.batch = self.batch, []
        self._update(batch, version)

    def _update(self, batch: list[Segment], version: int) -> None:
        """TRPO step and value fit on ``batch``; push ``old - new``; wait for the next version."""
        rollout = self._rollout(batch)
        old = self.flat.numpy()
        step, entropy = self._policy_step(rollout)
        value_loss = self._fit_value(rollout)
        new = self.flat.numpy()
        new[self.layout.index.numpy()] = step.params.cpu().numpy()
        self.flat.load(old)  # the model stays on the shards' version until the next arrives
        if not step.success:
            self.counters.line_search_failures += 1
        self.last_update = TRPOUpdate(version, old, new, rollout.states, step)
        self.record(
            {
                names.KL_DIVERGENCE: step.kl,
                names.POLICY_LOSS: step.loss_after,
                names.VALUE_LOSS: value_loss,
                names.ENTROPY: entropy,
            }
        )
        if self.push_vector(old - new, len(rollout.states), segment_episodes(batch)):
            if not self.parameters.wait_consistent(self.config.sync_timeout, newer_than=version):
                self.counters.sync_timeouts += 1

    def _rollout(self, batch: list[Segment]) -> Rollout:
        """The batch's tensors with GAE advantages (normalised if asked) and returns."""
        c = self.config
        bootstraps = bootstrap_values(self.model, batch, self.device)
        advantages, returns = segments_gae(batch, bootstraps, c.gamma, c.gae_lambda)
        advantage = torch.as_tensor(advantages, device=self.device)
        if c.normalize_advantages and len(advantage) > 1:
            advantage = normalize_advantages(advantage)
        return Rollout(
            states=torch.as_tensor(stack_states(batch), device=self.device),
            actions=torch.as_tensor(np.concatenate([s.actions for s in batch]), device=self.device),
            log_probs=torch.as_tensor(
                np.concatenate([s.extras["log_prob"] for s in batch]), device=self.device
            ),
            advantages=advantage,
            returns=torch.as_tensor(returns, device=self.device),
        )

    def _policy_step(self, rollout: Rollout) -> tuple[TRPOResult, float]:
        """One TRPO step of the policy part; the result and the old policy's mean entropy."""
        c = self.config
        x0 = self.flat.vector[self.layout.index.to(self.device)].detach().clone()
        with torch.no_grad():
            old = self._distribution(x0, rollout.states)
            entropy = float(old.entropy().mean())

        def loss_fn(x: torch.Tensor) -> torch.Tensor:
            distribution = self._distribution(x, rollout.states)
            ratio = torch.exp(distribution.log_prob(rollout.actions) - rollout.log_probs)
            surrogate = (ratio * rollout.advantages).mean()
            if c.entropy_coef:
                surrogate = surrogate + c.entropy_coef * distribution.entropy().mean()
            return -surrogate

        def kl_fn(x: torch.Tensor) -> torch.Tensor:
            return old.kl(self._distribution(x, rollout.states)).mean()

        step = trpo_step(
            loss_fn,
            kl_fn,
            x0,
            c.max_kl,
            damping=c.damping,
            cg_iters=c.cg_iters,
            max_backtracks=c.max_backtracks,
            accept_ratio=c.accept_ratio,
        )
        return step, entropy

    def _distribution(self, x: torch.Tensor, states: torch.Tensor) -> Categorical | DiagGaussian:
        """The action distribution of the policy whose parameters are ``x`` (P,)."""
        params = self.layout.params(x)
        head = functional_call(self.model, params, (states,)).head
        if self.action.is_discrete:
            return Categorical(head)
        return DiagGaussian(head, params["log_std"])

    def _fit_value(self, rollout: Rollout) -> float:
        """Adam epochs of the value part on the GAE returns; the last epoch's mean loss."""
        c = self.config
        n = len(rollout.returns)
        losses: list[float] = []
        for _ in range(c.value_epochs):
            losses = []
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for rows in order.chunk(min(c.value_minibatches, n)):
                values = self.model(rollout.states[rows]).value
                loss = ((values - rollout.returns[rows]) ** 2).mean()
                self.value_optimizer.zero_grad(set_to_none=False)
                loss.backward()
                self.value_optimizer.step()
                losses.append(float(loss.detach()))
        self.flat.zero_grad()
        return float(np.mean(losses))
