"""``VectorAgentProxy``: N environments as one block of N sessions, one message per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from relaax_zmq.client.block import BlockProxy, config_options
from relaax_zmq.protocol import messages


class VectorAgentProxy(BlockProxy):
    """N sessions stepped together: arrays in, arrays out, one round trip per step.

    Episode ends are per session (an ``episode_flags`` tensor), so sessions may end
    their episodes at different steps; a step that ends every session's episode sends
    header flags instead (the block's boundary, where the broker may move the block to
    another worker). A restart concerns the whole block.
    """

    def __init__(self, endpoint: str, n: int, **options: Any) -> None:
        super().__init__(endpoint, n, **options)

    @classmethod
    def from_config(cls, config: Any, n: int | None = None, **overrides: Any) -> VectorAgentProxy:
        """A block of ``n`` (default ``environment.clients``) sessions on ``broker.frontend``."""
        options = config_options(config) | overrides
        return cls(options.pop("endpoint"), n or config.environment.clients, **options)

    @classmethod
    def in_process(cls, host: Any, n: int, **options: Any) -> VectorAgentProxy:
        """A block of ``n`` sessions whose requests go straight to ``host`` (a ``SessionHost``)."""
        from relaax_zmq.client.inprocess import InProcessConnection

        return cls("inproc://in-process", n, connection=InProcessConnection(host), **options)

    def update(
        self,
        rewards: ArrayLike | None = None,
        states: ArrayLike | None = None,
        terminal: ArrayLike | None = None,
        truncated: ArrayLike | None = None,
    ) -> np.ndarray:
        """One step of every session; returns the actions, shape (n, ...).

        ``rewards`` (n,) or None (the first step of every episode), ``states``
        (n, ...), ``terminal``/``truncated`` (n,) bools (default all False).
        """
        if states is not None:
            states = np.asarray(states)
            if states.ndim == 0 or states.shape[0] != self.n:
                raise ValueError(f"expected states of shape ({self.n}, ...), got {states.shape}")
        reward = self._rewards(rewards)
        ends = messages.episode_flags(self._flags(terminal), self._flags(truncated))
        if ends[0] and (ends == ends[0]).all():  # the whole block's episodes end: header
            return self._update(reward, states, messages.boundary_flags(int(ends[0])))
        return self._update(reward, states, ends)

    def _flags(self, flags: ArrayLike | None) -> np.ndarray:
        if flags is None:
            return np.zeros(self.n, bool)
        arr = np.asarray(flags, bool)
        if arr.shape != (self.n,):
            raise ValueError(f"expected flags of shape ({self.n},), got {arr.shape}")
        return arr
