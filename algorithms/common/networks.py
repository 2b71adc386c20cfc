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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import nn

from .distributions import Categorical, DiagGaussian
from .spaces import ActionSpec, ObservationSpec

Activation = Literal["tanh", "relu"]
#: (h, c) of an LSTM, each (B, hidden_size)
LSTMState = tuple[torch.Tensor, torch.Tensor]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
_SQRT2 = math.sqrt(2.0)
#: Nature-DQN convolutions: (out_channels, kernel, stride)
NATURE_CONVS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))


def _activation(name: str) -> type[nn.Module]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def orthogonal_init(layer: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights scaled by ``gain`` and zero biases; returns ``layer``."""
    weight = getattr(layer, "weight", None)
    if weight is not None:
        nn.init.orthogonal_(weight, gain)
    bias = getattr(layer, "bias", None)
    if bias is not None:
        nn.init.zeros_(bias)
    return layer


def linear(in_size: int, out_size: int, gain: float = 1.0) -> nn.Linear:
    """An orthogonally initialized ``nn.Linear`` (zero bias)."""
    layer = nn.Linear(in_size, out_size)
    orthogonal_init(layer, gain)
    return layer


def mlp(
    in_size: int,
    hidden_sizes: Sequence[int],
    out_size: int | None = None,
    activation: Activation = "tanh",
    hidden_gain: float = _SQRT2,
    out_gain: float = 1.0,
) -> nn.Sequential:
    """(B, in_size) -> (B, out_size): hidden layers each followed by ``activation``.

    With ``out_size=None`` the last hidden layer (activated) is the output: a torso.
    """
    act = _activation(activation)
    layers: list[nn.Module] = []
    size = in_size
    for hidden in hidden_sizes:
        layers += [linear(size, hidden, hidden_gain), act()]
        size = hidden
    if out_size is not None:
        layers.append(linear(size, out_size, out_gain))
    return nn.Sequential(*layers)


def _mlp_out_size(in_size: int, hidden_sizes: Sequence[int], out_size: int | None) -> int:
    if out_size is not None:
        return out_size
    return hidden_sizes[-1] if hidden_sizes else in_size


class MLPTorso(nn.Module):
    """(B, *shape) -> (B, out_size): the flattened observation through an MLP."""

    def __init__(
        self, shape: Sequence[int], hidden_sizes: Sequence[int], activation: Activation = "tanh"
    ) -> None:
        super().__init__()
        in_size = math.prod(shape)
        self.net = mlp(in_size, hidden_sizes, None, activation)
        self.out_size = _mlp_out_size(in_size, hidden_sizes, None)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states.reshape(states.shape[0], -1).float())


class ConvTorso(nn.Module):
    """(B, C, H, W) or (B, H, W, C) uint8 images -> (B, out_size).

    The Nature-DQN convolutions (ReLU) over ``images / 255``, flattened, then
    ``hidden_sizes`` dense layers (``(512,)``: the Nature network).
    ``channels_last=None`` takes the smaller of the first and last dimensions of
    ``shape`` as the channels ((84, 84, 4) is HWC, (4, 84, 84) CHW).
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden_sizes: Sequence[int] = (512,),
        activation: Activation = "relu",
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"image shape: expected (C, H, W) or (H, W, C), got {tuple(shape)}")
        if channels_last is None:
            channels_last = shape[-1] < shape[0]
        self.channels_last = channels_last
        channels, height, width = (shape[2], shape[0], shape[1]) if channels_last else shape
        layers: list[nn.Module] = []
        for out_channels, kernel, stride in NATURE_CONVS:
            conv = nn.Conv2d(channels, out_channels, kernel, stride)
            layers += [orthogonal_init(conv, _SQRT2), nn.ReLU()]
            channels = out_channels
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            if height < 1 or width < 1:
                raise ValueError(
                    f"image shape: expected at least 36x36 pixels for the Nature convolutions, "
                    f"got {tuple(shape)}"
                )
        self.convs = nn.Sequential(*layers, nn.Flatten())
        conv_size = channels * height * width
        self.dense = mlp(conv_size, hidden_sizes, None, activation)
        self.out_size = _mlp_out_size(conv_size, hidden_sizes, None)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        images = states.float() * (1.0 / 255.0)
        if self.channels_last:
            images = images.permute(0, 3, 1, 2)
        return self.dense(self.convs(images))


Torso = MLPTorso | ConvTorso


def make_torso(
    observation: ObservationSpec, hidden_sizes: Sequence[int], activation: Activation = "tanh"
) -> Torso:
    """``ConvTorso`` (then ``hidden_sizes`` dense layers) for images, else ``MLPTorso``."""
    if observation.is_image:
        return ConvTorso(observation.shape, hidden_sizes, activation)
    return MLPTorso(observation.shape, hidden_sizes, activation)


class LSTMCore(nn.Module):
    """One LSTM layer whose recurrent state (h, c), each (B, hidden_size), lives outside."""

    def __init__(self, in_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.LSTMCell(in_size, hidden_size)
        for name, param in self.cell.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> LSTMState:
        """Zero (h, c) for ``batch`` sessions."""
        zeros = torch.zeros(batch, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """One step: x (B, in_size), state (h, c) -> (output (B, hidden_size), new state)."""
        h, c = self.cell(x, state)
        return h, (h, c)

    def unroll(
        self, x_seq: torch.Tensor, state0: LSTMState, dones: torch.Tensor
    ) -> tuple[torch.Tensor, LSTMState]:
        """T steps: x_seq (T, B, in_size), dones (T, B) -> (outputs (T, B, hidden), last state).

        ``dones[t]`` marks step t as the last of its episode: the state is zeroed
        after step t, so step t + 1 starts from zeros (as an agent resets a
        session's state after a terminal step). The last state is after that reset.
        """
        if dones.shape != x_seq.shape[:2]:
            raise ValueError(
                f"dones: expected shape {tuple(x_seq.shape[:2])}, got {tuple(dones.shape)}"
            )
        keep = (~dones.bool()).to(x_seq.dtype).unsqueeze(-1)
        state = state0
        outputs = []
        for t in range(x_seq.shape[0]):
            out, (h, c) = self(x_seq[t], state)
            outputs.append(out)
            state = (h * keep[t], c * keep[t])
        return torch.stack(outputs), state


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
