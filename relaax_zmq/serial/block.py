"""``AgentBlock``: a block of sessions whose steps go straight into an agent.

It has the interface ``VectorRunner`` drives (``VectorAgentProxy``'s ``init``, ``update``,
``disconnect``, ``metrics``), so serial mode steps environments with the very code the
clients use, while each update becomes one ``StepBatch`` for ``Agent.act``: no codec,
no sockets, no broker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from relaax_zmq.client.metrics import MetricsBuffer
from relaax_zmq.core import Agent, StepBatch

#: ``(scalars, histograms)`` of the block's episode metrics, at each episode end.
MetricsSink = Callable[[Mapping[str, float], Mapping[str, np.ndarray]], None]


class AgentBlock:
    """``n`` sessions (ids ``first_id ..``) of ``agent``; ``after_step`` runs after each act."""

    def __init__(
        self,
        agent: Agent,
        n: int,
        *,
        first_id: int = 1,
        metrics: MetricsSink | None = None,
        after_step: Callable[[], None] | None = None,
    ) -> None:
        self.agent = agent
        self.n = n
        self.session_ids = np.arange(first_id, first_id + n, dtype=np.uint64)
        self.metrics = MetricsBuffer(metrics or (lambda scalars, histograms: None))
        self.after_step = after_step
        self.steps = 0  #: updates answered
        self._exploit = np.zeros(n, bool)
        self._open = False

    def init(self, exploit: bool = False) -> int:
        """Open the block's sessions (closing them first when open)."""
        if self._open:
            self.agent.close_sessions(self.session_ids)
        self.agent.open_sessions(self.session_ids, exploit=exploit)
        self._exploit = np.full(self.n, exploit)
        self._open = True
        return int(self.session_ids[0])

    def update(
        self,
        rewards: ArrayLike | None,
        states: ArrayLike,
        terminal: ArrayLike,
        truncated: ArrayLike,
    ) -> np.ndarray:
        """One step of every session; the agent's actions."""
        batch = StepBatch(
            self.session_ids,
            np.full(self.n, np.nan, np.float32)
            if rewards is None
            else np.asarray(rewards, np.float32),
            np.asarray(states),
            np.asarray(terminal, bool),
            np.asarray(truncated, bool),
            self._exploit,
        )
        actions = self.agent.act(batch)
        self.steps += 1
        if self.metrics and batch.ends.any():  # episode ends flush, as a client's block does
            self.metrics.flush()
        if self.after_step is not None:
            self.after_step()
        return actions

    def disconnect(self) -> None:
        """Flush the metrics and close the sessions."""
        self.metrics.flush()
        if self._open:
            self.agent.close_sessions(self.session_ids)
            self._open = False
