"""``TorchAgent``: the worker side every built-in algorithm shares.

It holds the torch model bound to one flat vector (``FlatModel``), keeps it at the
shards' newest usable weights, turns observations into tensors (normalised by the
running statistics shared through shard 0 when ``input.normalize``), records the
training sessions' experience (``Recorder``) and pushes gradients. An algorithm
subclasses it and writes two methods:

- ``policy(observations, batch) -> (actions, extras)``: actions for a batch (greedy
  where ``batch.exploit``; its session ids, episode starts and ends serve per-session
  state), and per-row arrays to keep with each transition (log-probability, value ...);
- ``learn(segments)``: use the segments cut this step; push when it has enough.

Each ``act`` observes, cuts the segments the step completes (``cut``), chooses actions
on the newest usable weights (``policy``), records them (unless ``recording`` says no)
and calls ``learn``, before choosing when ``learns_before_acting``. No algorithm
overrides ``act``.

Until the first weights arrive, training sessions act uniformly at random and record
nothing; exploit sessions never record.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from relaax_zmq.core import Agent, AgentContext, StepBatch, names

from .config import InputConfig, OptimizerConfig
from .distributions import Distribution
from .flat import FlatModel
from .normalizer import RewardScaler, RunningMeanStd
from .recorder import Recorder, Segment
from .spaces import ActionSpec


@dataclass
class AgentCounters:
    """What every built-in agent counts (its ``stats`` show every field by name).

    An algorithm that counts more subclasses it (``PPOCounters(AgentCounters)``) and sets
    ``self.counters`` to one in its ``__init__``.
    """

    steps: int = 0  # session steps acted on
    random_steps: int = 0  # ... with uniform actions, before the first weights
    exploit_steps: int = 0  # ... of exploit sessions
    segments: int = 0  # segments the recorder cut
    pushes: int = 0  # gradients handed to the parameter client
    not_pushed: int = 0  # gradients dropped: no weights yet, or training stopping


class Sampled(NamedTuple):
    """What ``TorchAgent.sample`` returns."""

    output: Any  # the model's output (``ActorCriticOutput``: head, value ...)
    actions: torch.Tensor
    log_probs: torch.Tensor


class TorchAgent(Agent):
    """Shared worker-side machinery (see the module docstring).

    Args:
        context: the worker's context; ``context.parameters`` is required.
        config: the algorithm's hyperparameters, with the shared ``input``, ``output`` and
            ``optimizer`` sections (``algorithms.common.config``).
        model: the algorithm's network; its parameters are the shards' flat vector.
        name: the algorithm's name, for messages.
        recorder: how experience is cut into segments (``Recorder``).
        reward_scaler: rewards of the segments are scaled by it before ``learn`` (None: raw).
        optimizer: gradient clipping from this section instead of ``config.optimizer``.
    """

    def __init__(
        self,
        context: AgentContext,
        config: Any,
        model: nn.Module,
        *,
        name: str,
        recorder: Recorder,
        reward_scaler: RewardScaler | None = None,
        optimizer: OptimizerConfig | None = None,
    ) -> None:
        if context.parameters is None:
            raise ValueError(f"{name} learns through the parameter servers: no ParameterClient")
        input: InputConfig = config.input
        optimizer = optimizer if optimizer is not None else config.optimizer
        self.config = config
        self.name = name
        self.parameters = context.parameters
        self.metrics = context.metrics
        self.device = torch.device(context.device)
        self.model = model.to(self.device)
        self.flat = FlatModel(self.model)
        if self.flat.param_count != self.parameters.param_count:
            raise ValueError(
                f"{name}: the model has {self.flat.param_count} parameters, "
                f"the shards serve {self.parameters.param_count}"
            )
        self.input = input
        self.observation = input.spec()
        self.action: ActionSpec = config.output.spec()
        self.max_grad_norm = optimizer.max_grad_norm
        shape = self.observation.shape
        self.normalizer = RunningMeanStd(shape) if input.normalize else None
        self.seed = zlib.crc32(f"{context.seed}/{context.worker_id}/{name}".encode())
        self.rng = np.random.default_rng(self.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.recorder = recorder
        self.reward_scaler = reward_scaler
        self.versions: np.ndarray | None = None  # versions of the weights in the model
        self.counters = AgentCounters()

    # -- the algorithm's part -----------------------------------------------------------------

    #: ``learn`` runs before the step's actions are chosen (a learning phase that changes
    #: the weights they are chosen with, as ppo's) instead of after (gradients on the
    #: weights that just acted: the default).
    learns_before_acting: ClassVar[bool] = False

    @abstractmethod
    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Actions for the (B, *obs) observations of ``batch``'s rows, greedy where
        ``batch.exploit``, and per-row extras to record with them (log-probability ...)."""

    @abstractmethod
    def learn(self, segments: list[Segment]) -> None:
        """Use the segments cut this step (possibly none); push gradients when due."""

    def cut(self, batch: StepBatch, states: np.ndarray) -> list[Segment]:
        """The segments this step completes: the recorder's cut (rewards given to actions)."""
        return self.recorder.step(batch, states)

    def recording(self, batch: StepBatch) -> bool:
        """Whether this step's actions are recorded (exploit rows never are); default yes."""
        return True

    # -- sessions -----------------------------------------------------------------------------

    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        self.recorder.open(session_ids, exploit=exploit)

    def close_sessions(self, session_ids: np.ndarray) -> None:
        self.recorder.close(session_ids)
        self._forget_returns(session_ids)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        self.recorder.end_episodes(session_ids)
        self._forget_returns(session_ids)

    def _forget_returns(self, session_ids: np.ndarray) -> None:
        """The reward scaler's running returns of these sessions start again."""
        if self.reward_scaler is not None:
            for sid in session_ids.tolist():
                self.reward_scaler.reset(sid)

    def scale_rewards(self, segments: list[Segment]) -> list[Segment]:
        """The segments with their rewards scaled by ``reward_scaler`` (as they are without)."""
        scaler = self.reward_scaler
        if scaler is None:
            return segments
        return [
            replace(s, rewards=scaler.scale_segment(s.session_id, s.rewards, s.episode_ended))
            for s in segments
        ]

    # -- acting -------------------------------------------------------------------------------

    def act(self, batch: StepBatch) -> np.ndarray:
        n = len(batch)
        if batch.states is None:
            raise ValueError(f"{self.name}: expected observations with every update")
        states = self.observations(batch)
        segments = self.cut(batch, states)
        self.counters.segments += len(segments)
        if self.learns_before_acting:
            self.learn(self.scale_rewards(segments))
        if self.sync_weights():
            tensor = torch.as_tensor(states, device=self.device)
            actions, extras = self.policy(tensor, batch)
            if self.recording(batch):
                self.recorder.act(batch, states, actions, extras)
            actions = self.client_actions(actions)
        else:
            actions = self.random_actions(n)
            self.counters.random_steps += n
        self.counters.steps += n
        self.counters.exploit_steps += int(np.count_nonzero(batch.exploit))
        if not self.learns_before_acting:
            self.learn(self.scale_rewards(segments))
        return actions

    def observations(self, batch: StepBatch) -> np.ndarray:
        """The batch's observations checked, as the model takes them (normalised if asked)."""
        assert batch.states is not None
        spec = self.observation
        states = np.asarray(batch.states)
        if states.shape[1:] != spec.shape:
            raise ValueError(
                f"{self.name}: expected observations of shape {spec.shape}, "
                f"got {tuple(states.shape[1:])}"
            )
        if self.normalizer is None:
            return np.ascontiguousarray(states, dtype=spec.dtype)
        training = ~np.asarray(batch.exploit, bool)
        if training.any():
            self.normalizer.update(states[training].astype(np.float64))
        return self.normalizer.normalize(states, clip=self.input.clip)

    def choose(self, distribution: Distribution, exploit: np.ndarray) -> torch.Tensor:
        """A sample per row, the distribution's mode where ``exploit`` (no gradient)."""
        with torch.no_grad():
            actions = distribution.sample(self.generator)
            if exploit.any():
                greedy = torch.as_tensor(exploit, device=actions.device)
                greedy = greedy.view(-1, *([1] * (actions.dim() - 1)))
                actions = torch.where(greedy, distribution.mode(), actions)
        return actions

    def sample(self, observations: torch.Tensor, exploit: np.ndarray) -> Sampled:
        """An actor-critic's output for ``observations``, an action per row (the mode where
        ``exploit``) and its log-probability, without gradients."""
        with torch.no_grad():
            output = self.model(observations)
            distribution = self.model.distribution(output.head)
            actions = self.choose(distribution, exploit)
            return Sampled(output, actions, distribution.log_prob(actions))

    def client_actions(self, actions: np.ndarray) -> np.ndarray:
        """What clients get: continuous actions clipped to the bounds (recorded unclipped)."""
        if self.action.is_discrete:
            return actions
        return np.clip(actions, self.action.low, self.action.high).astype(np.float32)

    def random_actions(self, n: int) -> np.ndarray:
        """Uniform actions: what training sessions do before the first weights."""
        if self.action.is_discrete:
            assert self.action.n is not None
            return self.rng.integers(0, self.action.n, n)
        low, high = np.array(self.action.low), np.array(self.action.high)
        return self.rng.uniform(low, high, (n, len(low))).astype(np.float32)

    # -- weights and gradients ----------------------------------------------------------------

    def sync_weights(self) -> bool:
        """Load the shards' newest usable weights into the model; False while there are none."""
        parameters = self.parameters
        parameters.poll()
        if not parameters.ready:
            return self.versions is not None
        vector, versions, _ = parameters.weights()
        if self.versions is None or not np.array_equal(versions, self.versions):
            self.flat.load(vector)
            self.versions = versions.copy()
            self.on_new_weights()
        self.apply_statistics()
        return True

    def apply_statistics(self) -> None:
        """Normalise with shard 0's newest observation statistics (when normalising)."""
        if self.normalizer is not None:
            totals = self.parameters.statistics()
            if totals is not None:
                self.normalizer.apply_global(totals)

    def on_new_weights(self) -> None:  # noqa: B027 - optional hook
        """Called after new weights were loaded (target networks, caches ...)."""

    def push_gradient(self, steps: int, episodes: int) -> bool:
        """Push the model's accumulated ``.grad`` (clipped to ``max_grad_norm``), then zero it.

        Records the gradient's global norm (before clipping) as ``gradient_norm``.

        ``steps`` and ``episodes``: the environment steps and finished episodes the
        gradient covers. False when it could not go (no weights yet, training stopped).
        """
        grad = self.flat.grad_vector()
        norm = float(torch.linalg.vector_norm(grad))
        if self.max_grad_norm is not None and norm > self.max_grad_norm:
            grad.mul_(self.max_grad_norm / (norm + 1e-6))
        self.record({names.GRADIENT_NORM: norm})
        gradient = grad.detach().cpu().numpy().copy()
        self.flat.zero_grad()
        return self.push_vector(gradient, steps, episodes)

    def push_vector(self, gradient: np.ndarray, steps: int, episodes: int) -> bool:
        """Push ``gradient`` ((param_count,) float32, computed on ``self.versions``)."""
        if self.versions is None or self.parameters.stopping:
            self.counters.not_pushed += 1
            return False
        if self.normalizer is not None:
            self.parameters.add_statistics(self.normalizer.take_delta())
        sent = self.parameters.push(gradient, self.versions, steps, episodes)
        self.counters.pushes += 1
        return sent > 0

    def record(self, values: dict[str, float]) -> None:
        """Learning figures for the metrics collector (``relaax_zmq.metrics.names``)."""
        if self.metrics is not None:
            for name, value in values.items():
                self.metrics.scalar(name, float(value))

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        return {
            **asdict(self.counters),
            "sessions": len(self.recorder.sessions),
            "waiting": self.recorder.waiting(),
        }


def segment_episodes(segments: list[Segment]) -> int:
    """Episodes that ended in ``segments``."""
    return sum(1 for s in segments if s.episode_ended)


def stack_states(segments: list[Segment]) -> np.ndarray:
    """(sum T, *obs): every segment's states, in order."""
    return np.concatenate([s.states for s in segments])


class WindowedAgent(TorchAgent):
    """A ``TorchAgent`` that keeps open n-step windows per training session (dqn, apex).

    ``flush_windows`` closes a session's windows; it runs when its episode ends (``end_episodes``),
    when it closes and when a new episode starts without an end flag (a client reset).
    """

    @abstractmethod
    def flush_windows(self, session_ids: np.ndarray) -> None:
        """Close the open windows of these sessions (bootstrapping from what was seen)."""

    def cut(self, batch: StepBatch, states: np.ndarray) -> list[Segment]:
        restarted = batch.starts & ~batch.exploit
        if restarted.any():  # a new episode without an end flag: close the open windows
            self.flush_windows(batch.session_ids[restarted])
        return super().cut(batch, states)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        self.flush_windows(session_ids)
        super().end_episodes(session_ids)

    def close_sessions(self, session_ids: np.ndarray) -> None:
        self.flush_windows(session_ids)
        super().close_sessions(session_ids)
