"""``AgentProxy``: a client of one session (a block of N = 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from relaax_zmq.client.block import BlockProxy, config_options
from relaax_zmq.protocol.constants import Flag

_TERMINAL = int(Flag.TERMINAL)
_TRUNCATED = int(Flag.TRUNCATED)


class AgentProxy(BlockProxy):
    """One environment talking to its agent through the broker.

    >>> with AgentProxy("tcp://127.0.0.1:7000") as agent:    # doctest: +SKIP
    ...     agent.init()
    ...     action = agent.update(state=obs)                 # first step: no reward
    ...     action = agent.update(reward=1.0, state=obs)
    ...     agent.metrics.scalar("episode_reward", 1.0)      # sent with the episode's end
    ...     agent.update(reward=1.0, state=obs, terminal=True)

    Errors and restarts follow ``relaax_zmq.client.block``: ``AgentError`` for an
    error reply, ``EpisodeRestart`` when the episode must start again.
    """

    def __init__(self, endpoint: str, **options: Any) -> None:
        super().__init__(endpoint, 1, **options)

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> AgentProxy:
        """A proxy to ``broker.frontend`` with the broker section's timeouts and backoff."""
        options = config_options(config) | overrides
        return cls(options.pop("endpoint"), **options)

    @classmethod
    def in_process(cls, host: Any, **options: Any) -> AgentProxy:
        """A proxy whose requests go straight to ``host`` (a ``SessionHost``), no sockets."""
        from relaax_zmq.client.inprocess import InProcessConnection

        return cls("inproc://in-process", connection=InProcessConnection(host), **options)

    def update(
        self,
        reward: float | None = None,
        state: ArrayLike | None = None,
        terminal: bool = False,
        truncated: bool = False,
    ) -> Any:
        """One step; returns this session's action (a numpy scalar or array).

        ``reward`` is the reward of the previous action (None on the first step of an
        episode); a terminal/truncated update also flushes the metrics.
        """
        states = None if state is None else np.asarray(state)[np.newaxis]
        ends = (_TERMINAL if terminal else 0) | (_TRUNCATED if truncated else 0)
        return self._update(self._rewards(reward), states, ends)[0]
