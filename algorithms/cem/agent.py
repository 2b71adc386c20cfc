"""The worker side of ``cem``: evaluate sampled policies for whole episodes, move the search.

The shards serve ``[mean, log_std]`` of a diagonal Gaussian over the parameters theta
of a small deterministic policy (``policy.ParameterPolicy``). Each training session
draws a candidate theta from the distribution at the start of each episode (the
weights the worker holds then) and acts with it for the whole episode; the episode's
return is the candidate's score (a candidate whose episode began before the session's
first recorded step, or was cut by a reset, is dropped). Exploit sessions act with the
mean.

Once a worker holds ``population`` scored candidates it keeps the best
``elite_fraction`` of them and fits the new distribution to them (``policy.cem_update``:
their mean; their variance plus ``noise``, a schedule over the shards' version), then
pushes the delta ``current - new`` of ``[mean, log_std]``: shards running plain SGD with
learning rate 1.0 land on the new distribution. With several workers (``update:
async``, the intended mode), each worker's population moves the shared distribution in
turn: a delta is computed from the weights the worker held and applied to whatever the
shards hold when it arrives, so other workers' moves in between are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch

from ..common.agent import AgentCounters, TorchAgent
from ..common.config import DELTA_OPTIMIZER
from ..common.recorder import Recorder, Segment
from .config import CEMConfig
from .policy import EliteUpdate, ParameterPolicy, SearchDistribution, cem_update

#: The metrics of an update: mean return of the population, of its elite, mean new std.
POPULATION_RETURN = "cem_population_return"
ELITE_RETURN = "cem_elite_return"
STD_MEAN = "cem_std_mean"


def build_policy(config: CEMConfig) -> ParameterPolicy:
    return ParameterPolicy(
        config.input.spec(), config.output.spec(), config.hidden_sizes, config.activation
    )


def build_model(config: CEMConfig) -> SearchDistribution:
    """The search distribution (the shards' vector: [mean, log_std])."""
    return SearchDistribution(build_policy(config), config.initial_std)


@dataclass
class Candidate:
    """A session's theta (P,), what its episode has earned so far, and the steps taken."""

    theta: torch.Tensor
    whole: bool  # drawn at the first step of its episode
    total: float = 0.0
    steps: int = 0


@dataclass(frozen=True)
class CEMUpdate:
    """What the last push was: the scored population, the elite step, the vectors."""

    thetas: torch.Tensor
    returns: torch.Tensor
    noise: float
    step: EliteUpdate
    current: np.ndarray
    new: np.ndarray


@dataclass
class CEMCounters(AgentCounters):
    """What a cem agent counts besides ``AgentCounters`` (its ``stats`` show them all)."""

    episodes: int = 0  # episodes that ended with a candidate drawn for them
    partial_episodes: int = 0  # ... whose candidate came in mid-episode (not scored)


class CEMAgent(TorchAgent):
    """The cross-entropy method over a policy's parameters (see the module docstring)."""

    counters: CEMCounters

    def __init__(self, context: AgentContext, config: CEMConfig) -> None:
        super().__init__(
            context,
            config,
            build_model(config),
            name="cem",
            recorder=Recorder(None),
            optimizer=DELTA_OPTIMIZER,
        )
        assert isinstance(self.model, SearchDistribution)
        self.search = self.model
        self.policy_net = build_policy(config)
        self.noise = config.noise_schedule()
        self.candidates: dict[int, Candidate] = {}
        self.scored: list[tuple[torch.Tensor, float, int]] = []  # theta, return, steps
        self.last_update: CEMUpdate | None = None
        self.counters = CEMCounters()

    # -- sessions -----------------------------------------------------------------------------

    def close_sessions(self, session_ids: np.ndarray) -> None:
        super().close_sessions(session_ids)
        for sid in session_ids.tolist():
            self.candidates.pop(sid, None)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        super().end_episodes(session_ids)
        for sid in session_ids.tolist():  # its episode was cut: its score would be partial
            self.candidates.pop(sid, None)

    # -- acting -------------------------------------------------------------------------------

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        starts = batch.starts
        for sid in batch.session_ids[starts].tolist():  # a new episode: a new candidate
            self.candidates.pop(sid, None)
        thetas = self.search.mean.detach().expand(len(batch), -1).clone()
        for row, sid in enumerate(batch.session_ids.tolist()):
            if not batch.exploit[row]:
                thetas[row] = self._candidate(sid, bool(starts[row])).theta
        with torch.no_grad():
            actions = self.policy_net.actions(thetas, observations)
        return actions.cpu().numpy(), {}

    def _candidate(self, sid: int, start: bool) -> Candidate:
        candidate = self.candidates.get(sid)
        if candidate is None:
            theta = self.search.sample(1, self.generator)[0]
            candidate = self.candidates[sid] = Candidate(theta, whole=start)
        return candidate

    # -- learning -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:
        for segment in segments:
            self._score(segment)
        if len(self.scored) >= self.config.population:
            scored, self.scored = self.scored, []
            self._update(scored)

    def _score(self, segment: Segment) -> None:
        """Add a segment's rewards to its candidate; score the candidate when its episode ended."""
        candidate = self.candidates.get(segment.session_id)
        if candidate is None:
            return
        candidate.total += float(segment.rewards.sum())
        candidate.steps += len(segment)
        if not segment.episode_ended:
            return
        del self.candidates[segment.session_id]
        self.counters.episodes += 1
        if candidate.whole:
            self.scored.append((candidate.theta, candidate.total, candidate.steps))
        else:
            self.counters.partial_episodes += 1

    def _update(self, scored: list[tuple[torch.Tensor, float, int]]) -> None:
        """Fit the new distribution to the elite of ``scored``; push ``current - new``."""
        c = self.config
        thetas = torch.stack([theta for theta, _, _ in scored])
        returns = torch.tensor([total for _, total, _ in scored], dtype=torch.float64)
        assert self.versions is not None
        noise = float(self.noise(int(self.versions[0])))
        step = cem_update(thetas, returns, c.elite_count(len(scored)), max(noise, 0.0), c.min_std)
        current = self.flat.numpy()
        new = torch.cat([step.mean, step.std.log()]).cpu().numpy().astype(np.float32)
        self.last_update = CEMUpdate(thetas, returns, noise, step, current, new)
        self.record(
            {
                POPULATION_RETURN: float(returns.mean()),
                ELITE_RETURN: float(returns[step.elite].mean()),
                STD_MEAN: float(step.std.mean()),
            }
        )
        steps = sum(n for _, _, n in scored)
        self.push_vector(current - new, steps, len(scored))

    def stats(self) -> dict[str, float]:
        std_mean = float(self.search.log_std.detach().exp().mean())
        return {**super().stats(), "scored": len(self.scored), "std_mean": std_mean}
