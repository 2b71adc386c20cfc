"""``UnrollActor``: the worker side of an algorithm with a central learner (IMPALA, APPO).

It acts as every ``TorchAgent`` does (the shards' newest weights, the running observation
statistics), records each training session's unrolls (``UnrollRecorder``) and ships every
full one to the learners through ``AgentContext.experience``, one message per unroll
(a fixed size: the link's queue bound in bytes is exact). It computes no gradient; the
observation statistics it gathers go to shard 0 with each shipment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from relaax_zmq.core import AgentContext, ExperienceSink, StepBatch

from .agent import AgentCounters, TorchAgent
from .unrolls import LOG_PROB, VALUE, Unroll, UnrollRecorder


class UnrollActor(TorchAgent):
    """Acts, records unrolls of ``config.unroll_length`` and ships them (module docstring)."""

    def __init__(self, context: AgentContext, config: Any, model: nn.Module, *, name: str) -> None:
        if context.experience is None:
            raise ValueError(
                f"{name}: expected a link to the learners to ship unrolls to "
                "(a worker builds it from the learner section), got none"
            )
        self.experience: ExperienceSink = context.experience
        observation, action = config.input.spec(), config.output.spec()
        recorder = UnrollRecorder(
            config.unroll_length,
            observation.shape,
            observation.dtype,
            action.shape,
            np.int64 if action.is_discrete else np.float32,
            config.gamma,
        )
        super().__init__(context, config, model, name=name, recorder=recorder)  # type: ignore[arg-type]
        self.counters = AgentCounters()
        self.shipped = 0
        self.dropped = 0

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        output, actions, log_probs = self.sample(observations, batch.exploit)
        assert self.versions is not None
        self.recorder.version = int(self.versions.min())
        extras = {LOG_PROB: log_probs.cpu().numpy(), VALUE: output.value.cpu().numpy()}
        return actions.cpu().numpy(), extras

    def learn(self, segments: list[Unroll]) -> None:  # type: ignore[override]
        """Ship each full unroll to the learners (not once training stops)."""
        if not segments or self.parameters.stopping:
            return
        if self.normalizer is not None:
            self.parameters.add_statistics(self.normalizer.take_delta())
        for unroll in segments:
            fields = {k: v[None] for k, v in unroll.fields.items()}
            sent = self.experience.send(
                fields, version=unroll.version, steps=unroll.steps, episodes=unroll.episodes
            )
            self.shipped += int(sent)
            self.dropped += int(not sent)

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "unrolls_shipped": self.shipped, "unrolls_dropped": self.dropped}
