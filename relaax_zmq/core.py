"""The plugin API: every interface an algorithm author touches, and nothing else.

A worker hosts one ``Agent`` for all its sessions and calls ``act`` once per drain with
a ``StepBatch``. Agents that learn read weights from, and push gradients to, the
``ParameterLink`` in ``AgentContext.parameters`` (the shards over ZeroMQ, or their own
update code in this process in serial mode). An algorithm package declares itself once,
``ALGORITHM = Algorithm(...)``, and is found by name through the ``relaax_zmq.algorithms``
entry points or loaded by ``algorithm.path``; docs/algorithms.md walks through
``examples/reinforce``, a whole algorithm in under 100 lines (``core_learner``: learners).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from relaax_zmq.config import specs as checks
from relaax_zmq.config.convert import option
from relaax_zmq.core_learner import ExperienceSink, Learner, LearnerContext
from relaax_zmq.errors import ConfigError
from relaax_zmq.metrics import names

__all__ = [
    "Agent", "AgentContext", "Algorithm", "ConfigError", "MetricsRecorder", "OptimizerSpec",
    "ParamGroup", "ParameterLink", "ParameterServerContext", "ParameterServerSpec", "StepBatch",
    "names", "option", "parse_config",
]  # fmt: skip
parse_config = checks.parse_config

C = TypeVar("C")


@dataclass(frozen=True)
class StepBatch:
    """One environment step of B sessions, stacked in batch order; ``rewards`` is NaN where
    the client sent none (an episode's first step), ``exploit`` sessions only act."""

    session_ids: np.ndarray  # (B,) uint64
    rewards: np.ndarray  # (B,) float32
    states: np.ndarray | None  # (B, ...); None when the clients sent no observation
    terminal: np.ndarray  # (B,) bool: the episode ended in a terminal state
    truncated: np.ndarray  # (B,) bool: it was cut short (time limit, reset)
    exploit: np.ndarray  # (B,) bool

    def __len__(self) -> int:
        return int(self.session_ids.shape[0])

    @property
    def starts(self) -> np.ndarray:
        """(B,) bool: the rows that begin an episode (no reward came with them)."""
        return np.isnan(self.rewards)

    @property
    def ends(self) -> np.ndarray:
        """(B,) bool: the rows whose episode ended (terminal or truncated)."""
        return self.terminal | self.truncated


class ParameterLink(Protocol):
    """A worker's view of the parameter servers: what agents use of it, nothing more.

    Weights carry one version per shard; ``ready``: fit for a forward pass (consistent,
    or complete when the spec allows mixed versions); ``stopping``: shard 0 announced
    the end of training (pushes are dropped); ``poll`` takes in what the shards
    published (True: the weights changed); ``weights()`` is (read-only vector, per-shard
    versions, consistent); ``wait_consistent`` polls until all slices share a version
    above ``newer_than`` (False on timeout); ``push`` sends each shard its slice of the
    gradient of the loss computed on ``base_versions`` (the slices that went);
    ``add_statistics`` adds to the shared statistics, ``statistics()`` is shard 0's newest
    totals (None before the first)."""

    param_count: int
    sync: bool  # parameter_servers.update is sync: one averaged step per round
    global_step: int  # shard 0's environment steps

    @property
    def ready(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...
    def poll(self) -> bool: ...
    def weights(self) -> tuple[np.ndarray, np.ndarray, bool]: ...
    def wait_consistent(self, timeout: float, *, newer_than: int | None = None) -> bool: ...
    def push(
        self, gradient: np.ndarray, base_versions: Sequence[int], steps: int, episodes: int
    ) -> int: ...
    def add_statistics(self, delta: np.ndarray) -> None: ...
    def statistics(self) -> np.ndarray | None: ...


class MetricsRecorder(Protocol):
    """Where an agent records learning figures (``names``: losses, entropy ...)."""

    def scalar(self, name: str, value: float, step: int | None = None) -> None: ...


@dataclass(frozen=True)
class AgentContext:
    """What an agent is built from: the raw ``algorithm.config``, the worker's name, torch
    ``device``, app ``seed``, most rows of one ``act``, the ``parameters`` link (None
    without shards), ``metrics`` (None: nobody listens), an actor's ``experience`` sink."""

    config: Mapping[str, Any] = field(default_factory=dict)
    worker_id: str = "worker"
    device: str = "cpu"
    seed: int | None = None
    max_batch: int = 64
    parameters: ParameterLink | None = None
    metrics: MetricsRecorder | None = None
    experience: ExperienceSink | None = None


class Agent(ABC):
    """The worker side of an algorithm; one instance serves every session of a worker."""

    @abstractmethod
    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        """Start tracking new sessions (fresh per-session state)."""

    @abstractmethod
    def close_sessions(self, session_ids: np.ndarray) -> None:
        """Forget sessions (client gone, moved to another worker)."""

    @abstractmethod
    def end_episodes(self, session_ids: np.ndarray) -> None:
        """These sessions' episodes were cut short; their next step starts a new one."""

    @abstractmethod
    def act(self, batch: StepBatch) -> np.ndarray:
        """Actions for every row of ``batch``, (B, ...), ended rows too (ignored). ``ValueError``
        for observations of a wrong shape or dtype: their clients get MALFORMED with its text."""

    def stats(self) -> dict[str, float]:
        """Numbers for the worker's status (steps, episodes ...)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources when the worker stops."""


@dataclass(frozen=True)
class ParamGroup:
    """``count`` elements from ``offset`` learn at ``lr_scale`` times the optimizer's rate."""

    offset: int
    count: int
    lr_scale: float

    def __post_init__(self) -> None:
        checks.check_param_group(self)


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer every shard runs over its slice: ``sgd`` (torch.optim.SGD),
    ``rmsprop`` or ``adam`` (torch.optim.Adam) with its kernel's keyword arguments (``lr``
    required), an optional learning rate over the global step, and parameter groups."""

    name: Literal["sgd", "rmsprop", "adam"]
    hyperparameters: Mapping[str, float | bool] = field(default_factory=dict)
    lr_schedule: Callable[[int], float] | None = None
    groups: tuple[ParamGroup, ...] = ()

    def __post_init__(self) -> None:
        checks.check_optimizer(self)

    def learning_rate(self, global_step: int) -> float:
        """The learning rate at ``global_step`` (before any group's scale)."""
        if self.lr_schedule is None:
            return float(self.hyperparameters["lr"])
        return float(self.lr_schedule(global_step))


@dataclass(frozen=True)
class ParameterServerSpec:
    """The shards' side: ``param_count`` float32 values, ``initial_parameters(seed)`` (the
    same vector in every process), the ``optimizer``; ``allow_mixed_versions``: async
    agents may act on slices of different versions; ``statistics_size``: a float64 vector
    on shard 0 that only grows by the deltas workers add (normaliser sums, say)."""

    param_count: int
    initial_parameters: Callable[[int], np.ndarray]
    optimizer: OptimizerSpec
    allow_mixed_versions: bool = False
    statistics_size: int = 0

    def __post_init__(self) -> None:
        checks.check_server_spec(self)

    def initial_vector(self, seed: int) -> np.ndarray:
        """``initial_parameters(seed)`` checked: a (param_count,) float32 vector, finite."""
        return checks.checked_vector(self.initial_parameters(seed), self.param_count)


@dataclass(frozen=True)
class ParameterServerContext:
    """``seed``: ``environment.seed`` (0 when null; every process agrees on it); ``shard``:
    the shard asking (None in a worker) of ``shards``."""

    seed: int = 0
    shard: int | None = None
    shards: int = 1


@dataclass(frozen=True)
class Algorithm(Generic[C]):
    """An algorithm, declared once as its package's ``ALGORITHM``.

    Attributes:
        name: what ``algorithm.name`` calls it (its entry point's name).
        config: the frozen dataclass of ``algorithm.config`` (fields from ``option``).
        agent: ``(context, config) -> Agent``: the worker side (the agent class, usually).
        parameter_server: ``(config, context) -> ParameterServerSpec``: the shards' side;
            None for an algorithm that needs no shards.
        model: ``config -> torch.nn.Module`` whose parameters are the vector, in
            ``FlatModel`` order (export, play, greedy evaluation); None: none.
        learner: ``(context, config) -> Learner`` (``core_learner``); None: agents learn.
    """

    name: str
    config: type[C]
    agent: Callable[[AgentContext, C], Agent]
    parameter_server: Callable[[C, ParameterServerContext], ParameterServerSpec] | None = None
    model: Callable[[C], Any] | None = None
    learner: Callable[[LearnerContext, C], Learner] | None = None

    def __post_init__(self) -> None:
        if not is_dataclass(self.config):
            raise TypeError(f"{self.name}: config must be a dataclass, got {self.config!r}")

    def parse(self, mapping: Mapping[str, Any] | None) -> C:
        """The hyperparameters from ``algorithm.config`` (``ValueError`` naming the key)."""
        return parse_config(self.config, mapping, self.name)

    def make_agent(self, context: AgentContext) -> Agent:
        """The worker side for ``context`` (its ``config`` parsed here)."""
        agent = self.agent(context, self.parse(context.config))
        if not isinstance(agent, Agent):
            raise TypeError(f"{self.name}: expected an Agent, got {type(agent).__name__}")
        return agent

    def make_parameter_server(
        self, config: Mapping[str, Any] | None, context: ParameterServerContext
    ) -> ParameterServerSpec | None:
        """The shards' side, None without one; cheap and the same in every process."""
        if self.parameter_server is None:
            return None
        spec = self.parameter_server(self.parse(config), context)
        if not isinstance(spec, ParameterServerSpec):
            raise TypeError(f"{self.name}: expected a ParameterServerSpec, got {spec!r}")
        return spec
