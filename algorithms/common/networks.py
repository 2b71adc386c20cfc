"""The torch networks of the built-in algorithms.

Every constructor takes explicit sizes (an ``ObservationSpec``/``ActionSpec``
and hidden sizes); none reads a global config. Linear and convolution layers
are orthogonally initialized with zero biases. Inputs are batched: states are
(B, *observation.shape) in the observation's dtype (uint8 images are scaled by
1/255 inside), outputs (B, ...). The flat parameter vector of a network is
``flat.flat_parameters(network)``.

Recurrent state is never kept inside a module: ``LSTMCore`` and ``ActorCritic``
take and return it, so an agent keeps one state per session and stacks the rows
of the sessions in a batch.

This module holds the whole networks (``ActorCritic``, ``QNetwork``,
``DeterministicActor``, ``Critic``); their building blocks (``linear``, ``mlp``, the
torsos, ``LSTMCore``) live in ``layers`` and are importable from here as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from .distributions import Categorical, DiagGaussian
from .layers import (
    NATURE_CONVS,
    Activation,
    ConvTorso,
    LSTMCore,
    LSTMState,
    MLPTorso,
    Torso,
    linear,
    make_torso,
    mlp,
    orthogonal_init,
)
from .spaces import ActionSpec, ObservationSpec

__all__ = [
    "NATURE_CONVS",
    "Activation",
    "ActorCritic",
    "actor_critic",
    "ActorCriticOutput",
    "ConvTorso",
    "Critic",
    "DeterministicActor",
    "LSTMCore",
    "LSTMState",
    "MLPTorso",
    "QNetwork",
    "Torso",
    "linear",
    "make_torso",
    "mlp",
    "orthogonal_init",
]


N = TypeVar("N", bound=nn.Module)


def from_sections(network: Callable[..., N], config: Any, **options: Any) -> N:
    """``network`` for an algorithm config's ``input`` and ``output`` sections, its
    ``hidden_sizes`` and ``activation``, and ``options``."""
    return network(
        config.input.spec(),
        config.output.spec(),
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        **options,
    )


def actor_critic(config: Any) -> ActorCritic:
    """An ``ActorCritic`` for a config with ``shared_torso``, ``lstm_size`` (the torso is
    shared with an LSTM) and ``init_log_std``; conv for uint8 images, as ``from_sections``."""
    return from_sections(
        ActorCritic,
        config,
        shared_torso=config.shared_torso or config.lstm_size is not None,
        lstm_size=config.lstm_size,
        init_log_std=config.init_log_std,
    )


class ActorCriticOutput(NamedTuple):
    """``head``: (..., n) logits or (..., d) Gaussian means; ``value``: (...,);
    ``memory``: the new LSTM state (None without an LSTM)."""

    head: torch.Tensor
    value: torch.Tensor
    memory: LSTMState | None


class ActorCritic(nn.Module):
    """A policy head and a value head over a torso (optionally an LSTM after it).

    Discrete actions: the head gives logits. Continuous actions: the head gives
    the Gaussian mean and ``log_std`` is a state-independent (d,) parameter
    (``squash=True``: actions are tanh of the Gaussian, in (-1, 1)).
    ``shared_torso=False`` gives the value head a torso of its own; an LSTM
    (``lstm_size``) needs the shared torso and serves both heads.
    """

    def __init__(
        self,
        observation: ObservationSpec,
        action: ActionSpec,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        shared_torso: bool = False,
        lstm_size: int | None = None,
        init_log_std: float = 0.0,
        squash: bool = False,
    ) -> None:
        super().__init__()
        if lstm_size is not None and not shared_torso:
            raise ValueError("ActorCritic: an LSTM (lstm_size) expected shared_torso=True")
        self.action = action
        self.squash = squash
        self.torso = make_torso(observation, hidden_sizes, activation)
        self.value_torso = (
            None if shared_torso else make_torso(observation, hidden_sizes, activation)
        )
        self.core = None if lstm_size is None else LSTMCore(self.torso.out_size, lstm_size)
        features = self.torso.out_size if lstm_size is None else lstm_size
        value_features = features if self.value_torso is None else self.value_torso.out_size
        self.policy_head = linear(features, action.size, gain=0.01)
        self.value_head = linear(value_features, 1, gain=1.0)
        self.log_std = (
            None
            if action.is_discrete
            else nn.Parameter(torch.full((action.size,), float(init_log_std)))
        )

    def initial_memory(
        self, batch: int, device: torch.device | str | None = None
    ) -> LSTMState | None:
        """Zero LSTM state for ``batch`` sessions (None without an LSTM)."""
        return None if self.core is None else self.core.initial_state(batch, device)

    def _heads(
        self, features: torch.Tensor, states: torch.Tensor, memory: LSTMState | None
    ) -> ActorCriticOutput:
        value_features = features if self.value_torso is None else self.value_torso(states)
        value = self.value_head(value_features).squeeze(-1)
        return ActorCriticOutput(self.policy_head(features), value, memory)

    def _check_memory(self, memory: LSTMState | None) -> LSTMState:
        if memory is None:
            raise ValueError("ActorCritic: expected the LSTM state (h, c), got None")
        return memory

    def forward(self, states: torch.Tensor, memory: LSTMState | None = None) -> ActorCriticOutput:
        """One step for B sessions: states (B, *obs_shape), memory (h, c) with an LSTM."""
        features = self.torso(states)
        if self.core is not None:
            features, memory = self.core(features, self._check_memory(memory))
        return self._heads(features, states, memory)

    def unroll(
        self,
        states: torch.Tensor,
        memory: LSTMState | None = None,
        dones: torch.Tensor | None = None,
    ) -> ActorCriticOutput:
        """T steps of B sessions: states (T, B, *obs_shape) -> head (T, B, ...), value (T, B).

        With an LSTM, ``memory`` is the state before step 0 and ``dones`` (T, B)
        resets it after each last step of an episode (``LSTMCore.unroll``).
        """
        steps, batch = states.shape[:2]
        flat_states = states.reshape(steps * batch, *states.shape[2:])
        features = self.torso(flat_states)
        if self.core is not None:
            if dones is None:
                raise ValueError("ActorCritic.unroll: expected dones (T, B) with an LSTM, got None")
            seq, memory = self.core.unroll(
                features.reshape(steps, batch, -1), self._check_memory(memory), dones
            )
            features = seq.reshape(steps * batch, -1)
        head, value, memory = self._heads(features, flat_states, memory)
        return ActorCriticOutput(
            head.reshape(steps, batch, -1), value.reshape(steps, batch), memory
        )

    def distribution(self, head: torch.Tensor) -> Categorical | DiagGaussian:
        """The action distribution of a head output."""
        if self.log_std is None:
            return Categorical(head)
        return DiagGaussian(head, self.log_std, squash=self.squash)


class QNetwork(nn.Module):
    """(B, *obs_shape) -> (B, n) action values; ``dueling``: V + A - mean(A)."""

    def __init__(
        self,
        observation: ObservationSpec,
        action: ActionSpec,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: Activation = "relu",
        dueling: bool = False,
    ) -> None:
        super().__init__()
        if action.n is None:
            raise ValueError(f"QNetwork: expected discrete actions, got {action}")
        self.torso = make_torso(observation, hidden_sizes, activation)
        self.advantage = linear(self.torso.out_size, action.n)
        self.value = linear(self.torso.out_size, 1) if dueling else None

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        features = self.torso(states)
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


def _continuous(name: str, action: ActionSpec) -> tuple[torch.Tensor, torch.Tensor]:
    if action.low is None or action.high is None:
        raise ValueError(f"{name}: expected continuous actions, got {action}")
    return torch.tensor(action.low), torch.tensor(action.high)


class DeterministicActor(nn.Module):
    """(B, *obs_shape) -> (B, d) actions: ``tanh`` scaled to [low, high]."""

    def __init__(
        self,
        observation: ObservationSpec,
        action: ActionSpec,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        low, high = _continuous("DeterministicActor", action)
        self.torso = make_torso(observation, hidden_sizes, activation)
        self.head = linear(self.torso.out_size, action.size, gain=0.01)
        self.register_buffer("scale", ((high - low) / 2).float(), persistent=False)
        self.register_buffer("offset", ((high + low) / 2).float(), persistent=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * torch.tanh(self.head(self.torso(states)))


class Critic(nn.Module):
    """Q(s, a): states (B, *obs_shape) and actions (B, d) -> (B,).

    ``twin=True`` holds two independent Q networks (TD3) and ``forward`` returns
    both (B,) values; ``q1`` is the first alone.
    """

    def __init__(
        self,
        observation: ObservationSpec,
        action: ActionSpec,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: Activation = "relu",
        twin: bool = False,
    ) -> None:
        super().__init__()
        _continuous("Critic", action)
        if observation.is_image:
            raise ValueError(f"Critic: expected a vector observation, got image {observation}")
        in_size = observation.size + action.size
        self.q1_net = mlp(in_size, hidden_sizes, 1, activation)
        self.q2_net = mlp(in_size, hidden_sizes, 1, activation) if twin else None

    def _inputs(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.cat([states.reshape(states.shape[0], -1).float(), actions.float()], dim=-1)

    def q1(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B,) values of the first Q network."""
        return self.q1_net(self._inputs(states, actions)).squeeze(-1)

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B,) values, or a pair of them with ``twin``."""
        inputs = self._inputs(states, actions)
        q1 = self.q1_net(inputs).squeeze(-1)
        if self.q2_net is None:
            return q1
        return q1, self.q2_net(inputs).squeeze(-1)
