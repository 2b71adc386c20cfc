"""``UnrollActor``: the worker side of an algorithm with a central learner (IMPALA, APPO).

It acts as every ``TorchAgent`` does (the shards' newest weights, the running observation
statistics), records each training session's unrolls (``UnrollRecorder``) and ships every
full one to the learners through ``AgentContext.experience``, one message per unroll
(a fixed size: the link's queue bound in bytes is exact). It computes no gradient; the
observation statistics it gathers go to shard 0 with each shipment. With an LSTM core
(``model.core``) it keeps each session's recurrent state (``SessionMemory``) and ships the
state each unroll started from.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from relaax_zmq.core import AgentContext, StepBatch
from relaax_zmq.core_learner import ExperienceSink

from .agent import AgentCounters, TorchAgent
from .memory import SessionMemory
from .normalizer import RewardScaler
from .unrolls import LOG_PROB, VALUE, Unroll, UnrollRecorder


class UnrollActor(TorchAgent):
    """Acts, records unrolls of ``config.unroll_length`` and ships them (module docstring)."""

    #: ship the unrolls a step completes before choosing its actions: in one process (serial
    #: mode) the learner's step lands first and the next unroll is acted on its result
    learns_before_acting = True

    def __init__(
        self,
        context: AgentContext,
        config: Any,
        model: nn.Module,
        *,
        name: str,
        reward_scaler: RewardScaler | None = None,
    ) -> None:
        if context.experience is None:
            raise ValueError(
                f"{name}: expected a link to the learners to ship unrolls to "
                "(a worker builds it from the learner section), got none"
            )
        self.experience: ExperienceSink = context.experience
        observation, action = config.input.spec(), config.output.spec()
        core = getattr(model, "core", None)
        self.memory = None if core is None else SessionMemory(core.hidden_size)
        starts = {} if core is None else {"h": (core.hidden_size,), "c": (core.hidden_size,)}
        recorder = UnrollRecorder(
            config.unroll_length,
            observation.shape,
            observation.dtype,
            action.shape,
            np.int64 if action.is_discrete else np.float32,
            config.gamma,
            starts,
        )
        super().__init__(
            context,
            config,
            model,
            name=name,
            recorder=recorder,
            reward_scaler=reward_scaler,  # type: ignore[arg-type]
        )
        self.counters = AgentCounters()
        self.shipped = 0
        self.dropped = 0

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        assert self.versions is not None
        self.recorder.version = int(self.versions.min())
        if self.memory is None:
            output, actions, log_probs = self.sample(observations, batch.exploit)
            extras = {}
        else:
            memory = self.memory.gather(batch.session_ids, batch.starts, self.device)
            with torch.no_grad():
                output = self.model(observations, memory)
                distribution = self.model.distribution(output.head)
                actions = self.choose(distribution, batch.exploit)
                log_probs = distribution.log_prob(actions)
            self.memory.scatter(batch.session_ids, output.memory, batch.ends)
            extras = {"h": memory[0].cpu().numpy(), "c": memory[1].cpu().numpy()}
        extras.update({LOG_PROB: log_probs.cpu().numpy(), VALUE: output.value.cpu().numpy()})
        return actions.cpu().numpy(), extras

    def cut(self, batch: StepBatch, states: np.ndarray) -> list[Unroll]:  # type: ignore[override]
        """Full unrolls; with a ``reward_scaler`` the rewards are scaled as they arrive, so
        that a truncation's bootstrap value (in the scaled units) adds to scaled rewards."""
        scaler = self.reward_scaler
        if scaler is not None:
            rows = ~(batch.starts | np.asarray(batch.exploit, bool))
            if rows.any():
                rewards = batch.rewards.copy()
                sessions = batch.session_ids[rows].tolist()
                rewards[rows] = scaler.scale_rows(sessions, rewards[rows], batch.ends[rows])
                batch = replace(batch, rewards=rewards)
        return self.recorder.step(batch, states)  # type: ignore[return-value]

    def scale_rewards(self, segments: list[Any]) -> list[Any]:
        """The unrolls as they are: their rewards were scaled on arrival (``cut``)."""
        return segments

    def close_sessions(self, session_ids: np.ndarray) -> None:
        super().close_sessions(session_ids)
        if self.memory is not None:
            self.memory.forget(session_ids)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        super().end_episodes(session_ids)
        if self.memory is not None:
            self.memory.forget(session_ids)

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
