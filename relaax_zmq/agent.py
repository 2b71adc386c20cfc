"""The algorithm plugin API, agent side: what a worker asks of an algorithm.

A worker hosts one ``Agent`` for all its sessions. Sessions are identified by
their u64 session id (a client's block of N sessions is N consecutive ids).
The worker drains every waiting update, stacks them into one ``StepBatch`` and
calls ``Agent.act`` once: one forward pass for every waiting session.

What an agent does with the experience is its own business: it may keep
per-session state (recurrent state, partial trajectories) keyed by session id,
compute gradients every k steps, or ship whole trajectories. An algorithm with a
parameter-server side (``relaax_zmq.learner``) gets its link to the shards in
``AgentContext.parameters`` (a ``relaax_zmq.ps.ParameterClient``): read weights
with ``weights()`` (``ready`` says whether they are fit for a forward pass; see
docs/parameter_servers.md for the version rules), push gradients with ``push``.
The worker polls the client once per loop turn (at least every 0.1 s); an agent
may call ``poll()`` itself before a forward pass for the newest weights. Sessions
opened with ``exploit=True`` act with the latest weights and must not produce
gradients or trajectories.

An algorithm is a Python package (a folder with ``__init__.py``) whose
``agent`` module defines ``make_agent(context: AgentContext) -> Agent``
(and, optionally, whose ``parameter_server`` module defines
``make_parameter_server``; see ``relaax_zmq.learner``). Built-ins live in
``relaax_zmq.algorithms.<name>``; an app-local one is loaded from
``algorithm.path`` (``load_agent``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from relaax_zmq.metrics import MetricsSender
    from relaax_zmq.ps.client import ParameterClient


@dataclass(frozen=True)
class AgentContext:
    """What an agent is built from.

    Attributes:
        config: ``algorithm.config`` of the app (checked by the algorithm's own dataclass).
        worker_id: the hosting worker's name (for logs and per-worker seeds).
        device: torch device string (``cpu``, ``cuda:0`` ...).
        seed: base seed of the app, or None.
        max_batch: most sessions the worker puts into one ``act`` call.
        parameters: the worker's link to the parameter-server shards; None when the
            algorithm has no ``parameter_server`` module.
        metrics: where the agent records its learning figures (``relaax_zmq.metrics.names``:
            losses, entropy, learning rate ...); the worker flushes it once per heartbeat
            at shard 0's global step. None: nobody listens.
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    worker_id: str = "worker"
    device: str = "cpu"
    seed: int | None = None
    max_batch: int = 64
    parameters: ParameterClient | None = None
    metrics: MetricsSender | None = None


@dataclass(frozen=True)
class StepBatch:
    """One environment step for B sessions, stacked.

    Attributes:
        session_ids: (B,) uint64, each session once.
        rewards: (B,) float32, the reward of the previous action; NaN where the
            client sent none (the first step of an episode).
        states: (B, ...) the observations, or None when the clients sent none
            (a terminal step without a final observation).
        terminal: (B,) bool, the episode ended in a terminal state.
        truncated: (B,) bool, the episode was cut short (time limit, reset).
        exploit: (B,) bool, the session only acts (no learning).
    """

    session_ids: np.ndarray
    rewards: np.ndarray
    states: np.ndarray | None
    terminal: np.ndarray
    truncated: np.ndarray
    exploit: np.ndarray

    def __len__(self) -> int:
        return int(self.session_ids.shape[0])


class Agent(ABC):
    """The agent side of an algorithm; one instance serves every session of a worker."""

    @abstractmethod
    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        """Start tracking new sessions (fresh per-session state)."""

    @abstractmethod
    def close_sessions(self, session_ids: np.ndarray) -> None:
        """Forget sessions (client gone, moved to another worker); drop their state."""

    @abstractmethod
    def end_episodes(self, session_ids: np.ndarray) -> None:
        """The episodes of these sessions were cut short (reset, restart, resume).

        The next step of each session starts a new episode (no reward).
        """

    @abstractmethod
    def act(self, batch: StepBatch) -> np.ndarray:
        """Actions for every session of ``batch``, shape (B, ...), in batch order.

        Rows whose step is terminal or truncated still get an action (the
        client ignores it). Raise ``ValueError`` for observations of the wrong
        shape or dtype: the worker answers those clients MALFORMED with the text.
        """

    def stats(self) -> dict[str, float]:
        """Numbers for the worker's status (steps, episodes, ...); none by default."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources when the worker stops (flush, join threads)."""
