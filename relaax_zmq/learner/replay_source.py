"""``ReplaySource``: the learner daemon's intake for a replay learner (Ape-X).

Where an unroll learner drains a PULL of the actors' unrolls, a replay learner
(``Learner.source`` "replay") samples the replay servers through a ``ReplayClient``:
each step takes the first batch any server sends (``batch_size`` items, importance
weights for the learner's ``beta``, a ``Learner`` attribute, 1.0 without one), learns
on it and sends the priorities ``learn`` returns back to the server the batch came from.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core_learner import Learner
from relaax_zmq.replay.client import ReplayClient


class ReplaySource:
    """Batches from the replay servers for ``learner`` (see the module docstring).

    Args:
        config: the app config (``replay``).
        learner: the algorithm's learner (``batch_size``, ``beta``).
        context: ZeroMQ context (the daemon's).
        source: the learner's name in the requests' headers.
        inproc: connect over ``inproc://``.
    """

    def __init__(
        self,
        config: AppConfig,
        learner: Learner,
        context: zmq.Context,
        *,
        source: str,
        inproc: bool = False,
    ) -> None:
        self.learner = learner
        self.client = ReplayClient(
            config,
            context,
            batch_size=learner.batch_size,
            beta=float(learner.beta),
            source=source,
            inproc=inproc,
        )

    def step(self, timeout: float) -> tuple[int, float] | None:
        """One learning step on a batch that came within ``timeout`` seconds: (items,
        seconds learning); None when none came."""
        batch = self.client.sample(timeout)
        if batch is None:
            return None
        started = time.monotonic()
        priorities = self.learner.learn(batch)
        seconds = time.monotonic() - started
        if priorities is not None:
            self.client.update_priorities(batch, priorities)
        return len(batch), seconds

    def stats(self) -> dict[str, Any]:
        return self.client.stats()

    def close(self) -> None:
        self.client.close()
