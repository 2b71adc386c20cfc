"""The worker side of ``da3c``: act with the actor-critic, push n-step gradients.

Each training session's experience is cut into segments of at most ``t_max`` steps
(sooner at an episode end). Once the worker holds ``batch_size`` transitions of such
segments it unrolls the network over all of them on its current weights (from each
segment's stored LSTM state at its start, with an LSTM), one step further onto the
observation after the last step to bootstrap, and pushes the gradient of
``a3c_loss``: ``-mean(log pi(a|s) * (R - V)) + value_coef * 0.5 * mean((R - V)^2)
- entropy_coef * mean(H)``. ``R`` is the n-step return ``r_t + gamma r_{t+1} + ... +
gamma^k V(s_end)`` (zero after termination) or, with ``gae_lambda``, the GAE(lambda)
advantage plus ``V``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch, names

from ..common.agent import TorchAgent, segment_episodes
from ..common.losses import A3CLoss, a3c_loss
from ..common.memory import SessionMemory
from ..common.networks import ActorCritic, LSTMState, actor_critic
from ..common.normalizer import RewardScaler
from ..common.recorder import Recorder, Segment
from ..common.returns import gae_to_segment_ends
from .config import DA3CConfig


def build_model(config: DA3CConfig) -> ActorCritic:
    """Policy and value heads over a torso (shared with an LSTM), conv for images."""
    return actor_critic(config)


class Padded(NamedTuple):
    """B segments side by side, time first, padded to the longest (T steps).

    ``states`` (T + 1, B, *obs): each segment's states then its next state (zeros after
    termination or in padding); ``actions`` (T, B, ...); ``rewards``, ``mask``, ``dones``
    (terminated at that step), ``ends`` (the segment's last step): (T, B); ``lengths`` (B,).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    dones: np.ndarray
    ends: np.ndarray
    lengths: np.ndarray


def pad_segments(segments: list[Segment]) -> Padded:
    """The segments as ``Padded`` arrays (see there)."""
    lengths = np.array([len(s) for s in segments])
    steps, count = int(lengths.max()), len(segments)
    first = segments[0]
    states = np.zeros((steps + 1, count, *first.states.shape[1:]), first.states.dtype)
    actions = np.zeros((steps, count, *first.actions.shape[1:]), first.actions.dtype)
    rewards = np.zeros((steps, count), np.float32)
    mask, dones, ends = (np.zeros((steps, count), bool) for _ in range(3))
    for column, (segment, length) in enumerate(zip(segments, lengths, strict=True)):
        states[:length, column] = segment.states
        if segment.next_state is not None:
            states[length, column] = segment.next_state
        actions[:length, column] = segment.actions
        rewards[:length, column] = segment.rewards
        mask[:length, column] = True
        dones[length - 1, column] = segment.terminal
        ends[length - 1, column] = True
    return Padded(states, actions, rewards, mask, dones, ends, lengths)


class DA3CAgent(TorchAgent):
    """Asynchronous advantage actor-critic (see the module docstring).

    ``memory`` holds the sessions' LSTM states (None for a feed-forward network).
    """

    def __init__(self, context: AgentContext, config: DA3CConfig) -> None:
        model = build_model(config)
        super().__init__(
            context,
            config,
            model,
            name="da3c",
            recorder=Recorder(config.t_max),
            reward_scaler=RewardScaler(config.gamma) if config.normalize_rewards else None,
        )
        self.memory = None if config.lstm_size is None else SessionMemory(config.lstm_size)
        self.batch: list[Segment] = []

    # -- sessions -----------------------------------------------------------------------------

    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        super().open_sessions(session_ids, exploit=exploit)
        self._forget(session_ids)

    def close_sessions(self, session_ids: np.ndarray) -> None:
        super().close_sessions(session_ids)
        self._forget(session_ids)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        super().end_episodes(session_ids)
        self._forget(session_ids)

    def _forget(self, session_ids: np.ndarray) -> None:
        if self.memory is not None:
            self.memory.forget(session_ids)

    # -- acting -------------------------------------------------------------------------------

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        memory = self._batch_memory(batch)
        with torch.no_grad():
            output = self.model(observations, memory)
            distribution = self.model.distribution(output.head)
        actions = self.choose(distribution, batch.exploit).cpu().numpy()
        if memory is None:
            return actions, {}
        assert self.memory is not None and output.memory is not None
        self.memory.scatter(batch.session_ids, output.memory, batch.ends)
        return actions, {"h": memory[0].cpu().numpy(), "c": memory[1].cpu().numpy()}

    def _batch_memory(self, batch: StepBatch) -> LSTMState | None:
        """The LSTM state before this step of every row (zeros where an episode starts)."""
        if self.memory is None:
            return None
        return self.memory.gather(batch.session_ids, batch.starts, self.device)

    # -- learning -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:
        self.batch += segments
        steps = sum(len(s) for s in self.batch)
        if steps < self.config.batch_size:
            return
        batch, self.batch = self.batch, []
        loss = self.loss(batch)
        loss.total.backward()
        self.push_gradient(steps, segment_episodes(batch))
        self.record(
            {
                names.LOSS: loss.total.item(),
                names.POLICY_LOSS: loss.policy_loss.item(),
                names.VALUE_LOSS: loss.value_loss.item(),
                names.ENTROPY: loss.entropy.item(),
            }
        )

    def loss(self, segments: list[Segment]) -> A3CLoss:
        """``a3c_loss`` over the segments' steps, on the model's current weights."""
        padded = pad_segments(segments)
        device = self.device
        states = torch.as_tensor(padded.states, device=device)
        memory = self._initial_memory(segments)
        dones = torch.zeros(states.shape[:2], dtype=torch.bool, device=device)
        output = self.model.unroll(states, memory, dones)
        values = output.value  # (T + 1, B): the last row only bootstraps
        distribution = self.model.distribution(output.head[:-1])
        actions = torch.as_tensor(padded.actions, device=device)
        returns = self.returns(padded, values.detach())
        mask = torch.as_tensor(padded.mask, device=device)
        return a3c_loss(
            distribution.log_prob(actions)[mask],
            values[:-1][mask],
            returns[mask],
            distribution.entropy()[mask],
            value_coef=self.config.value_coef,
            entropy_coef=self.config.entropy_coef,
        )

    def returns(self, padded: Padded, values: torch.Tensor) -> torch.Tensor:
        """(T, B) targets: n-step returns (``gae_lambda`` null: lambda = 1) or GAE + V.

        ``values`` (T + 1, B): row ``lengths[b]`` of column b is the bootstrap value of
        the observation after the segment; every segment ends there (terminated or cut).
        """
        device = values.device
        rows = torch.as_tensor(padded.lengths, device=device).unsqueeze(0)
        lam = 1.0 if self.config.gae_lambda is None else self.config.gae_lambda
        _, returns = gae_to_segment_ends(
            torch.as_tensor(padded.rewards, device=device),
            values[:-1],
            torch.as_tensor(padded.dones, device=device),
            torch.as_tensor(padded.ends, device=device),
            values.gather(0, rows).squeeze(0),
            self.config.gamma,
            lam,
        )
        return returns

    def _initial_memory(self, segments: list[Segment]) -> LSTMState | None:
        """(h, c), each (B, hidden): the LSTM state before each segment's first step."""
        if self.memory is None:
            return None
        h = np.stack([s.extras["h"][0] for s in segments])
        c = np.stack([s.extras["c"][0] for s in segments])
        return torch.as_tensor(h, device=self.device), torch.as_tensor(c, device=self.device)
