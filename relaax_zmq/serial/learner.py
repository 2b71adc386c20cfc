"""``SerialLearner``: a central learner in this process, the experience sink of serial mode.

An algorithm with a learner side (impala, appo) gets it as ``AgentContext.experience``:
each unroll its actor ships goes through the learner daemon's own intake
(``BatchAssembler``: schema, staleness) and every full batch is learned on at once,
through the same ``SerialParameters`` the actor reads. One thread, no sockets: the bound
the daemons are measured against, and a plain debugger sees both sides.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.core import Algorithm, MetricsRecorder
from relaax_zmq.core_learner import Learner, LearnerContext, make_learner
from relaax_zmq.learner.assembly import BatchAssembler
from relaax_zmq.learner.wire import TensorMessage

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
        if self.learner.source != "unrolls":
            raise ValueError(f"{algorithm.name}: serial mode feeds unrolls, not a replay")
        self.assembler = BatchAssembler(self.learner.batch_size, config.learner.max_lag)
        self.learn_steps = 0

    def send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool:
        """Take one message of unrolls; learn on every full batch."""
        message = TensorMessage("unrolls", fields, "serial", version, steps, episodes)
        current = int(self.parameters.weights()[1].min())
        self.assembler.add(message, current)
        while (batch := self.assembler.take(current)) is not None:
            self.learner.learn(batch)
            self.learn_steps += 1
            current = int(self.parameters.weights()[1].min())
        return True

    def close(self) -> None:
        self.learner.close()
