"""The building blocks of the built-in algorithms' networks (``networks`` assembles them).

Linear and convolution layers are orthogonally initialized with zero biases
(``orthogonal_init``, ``linear``); ``mlp`` stacks them. A torso turns a batch of
observations into features: ``MLPTorso`` for vectors, ``ConvTorso`` (the Nature-DQN
convolutions over ``images / 255``) for uint8 images, ``make_torso`` picks one.
``LSTMCore`` is one LSTM layer whose recurrent state (h, c) is passed in and returned,
never kept inside the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .spaces import ObservationSpec

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
