"""``SerialLearner``: a central learner in this process, the experience sink of serial mode.

An algorithm with a learner side (impala, appo) gets it as ``AgentContext.experience``:
each unroll its actor ships goes through the learner daemon's own intake
(``BatchAssembler``: schema, staleness) and every full batch is learned on at once,
through the same ``SerialParameters`` the actor reads. One thread, no sockets: the bound
the daemons are measured against, and a plain debugger sees both sides.

A replay learner (apex, ``Learner.source`` "replay") gets the replay server's own core
instead (``ReplayCore``: a ``PrioritizedTable`` and a ``RateLimiter`` from the ``replay``
section): each message of transitions is inserted, then batches are sampled and learned
on while the limiter allows (exactly ``samples_per_insert`` per item inserted, once the
table holds ``min_size_to_sample``; one batch per message without a ratio), and the new
priorities are written back.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.core import Algorithm, MetricsRecorder
from relaax_zmq.core_learner import Learner, LearnerContext, make_learner
from relaax_zmq.learner.assembly import BatchAssembler
from relaax_zmq.learner.wire import TensorMessage
from relaax_zmq.replay.client import batch_from_message
from relaax_zmq.replay.limiter import RateLimiter
from relaax_zmq.replay.server_core import ReplayCore

from .parameters import SerialParameters


class SerialLearner:
    """An ``ExperienceSink`` that learns in place (see the module docstring)."""

    def __init__(
        self,
        algorithm: Algorithm,
        config: AppConfig,
        parameters: SerialParameters,
        recorder: MetricsRecorder | None = None,
    ) -> None:
        self.parameters = parameters
        self.learner: Learner = make_learner(
            algorithm,
            LearnerContext(
                config=config.algorithm.config,
                name="serial-learner",
                device=config.learner.device,
                seed=config.environment.seed,
                parameters=parameters,
                metrics=recorder,
            ),
        )
        self.assembler = BatchAssembler(self.learner.batch_size, config.learner.max_lag)
        self.learn_steps = 0
        self.replay: ReplayCore | None = None
        if self.learner.source == "replay":  # -- a replay learner (apex) --
            r = config.replay
            limiter = RateLimiter(r.samples_per_insert, r.min_size_to_sample, r.buffer)
            self.replay = ReplayCore(
                r.capacity, r.alpha, limiter, seed=config.environment.seed or 0
            )

    def send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool:
        """Take one message of unrolls (of transitions for a replay learner); learn on
        every full batch."""
        if self.replay is not None:
            return self._replay_send(fields, version=version, steps=steps, episodes=episodes)
        message = TensorMessage("unrolls", fields, "serial", version, steps, episodes)
        current = int(self.parameters.weights()[1].min())
        self.assembler.add(message, current)
        while (batch := self.assembler.take(current)) is not None:
            self.learner.learn(batch)
            self.learn_steps += 1
            current = int(self.parameters.weights()[1].min())
        return True

    def _replay_send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool:
        """Insert one message of transitions; learn while the limiter allows."""
        assert self.replay is not None
        message = TensorMessage("transitions", fields, "serial", version, steps, episodes)
        why = self.replay.insert(message)
        if why:
            raise ValueError(f"serial replay: {why}")
        n, beta = self.learner.batch_size, float(self.learner.beta)
        ratio = self.replay.limiter.samples_per_insert is not None
        while self.replay.can_sample(n):
            batch = batch_from_message(self.replay.sample(n, beta, {}, "serial"))
            priorities = self.learner.learn(batch)
            self.learn_steps += 1
            if priorities is not None:
                update = {"key": batch.keys, "priority": np.asarray(priorities, np.float32)}
                self.replay.update_priorities(TensorMessage("priorities", update))
            if not ratio:
                break
        return True

    def close(self) -> None:
        self.learner.close()
