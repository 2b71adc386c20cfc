"""The policy whose parameters CEM searches, evaluated with one parameter vector per row.

A candidate theta (P,) is the flat parameter vector of ``mlp(obs_size, hidden_sizes,
out_size)`` (``common.networks.mlp``: each layer's weight (out, in) row-major, then its
bias). The policy is deterministic: discrete actions are the argmax of the outputs,
continuous ones ``offset + scale * tanh(outputs)`` within ``low``/``high``.
``cem_update`` is the elite step of the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..common.networks import Activation, mlp
from ..common.spaces import ActionSpec, ObservationSpec


class ParameterPolicy:
    """A small MLP applied with per-row parameters: thetas (B, P), states (B, *obs) -> actions."""

    def __init__(
        self,
        observation: ObservationSpec,
        action: ActionSpec,
        hidden_sizes: Sequence[int] = (),
        activation: Activation = "tanh",
    ) -> None:
        self.observation = observation
        self.action = action
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.act_fn = getattr(torch, activation)  # torch.tanh, torch.relu
        sizes = [observation.size, *self.hidden_sizes, action.size]
        self.layers = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.param_count = sum(o * i + o for i, o in self.layers)
        if not action.is_discrete:
            low = torch.as_tensor(action.low, dtype=torch.float32)
            high = torch.as_tensor(action.high, dtype=torch.float32)
            self.scale, self.offset = (high - low) / 2, (high + low) / 2

    def network(self) -> nn.Sequential:
        """A freshly initialised network of this layout (its parameters: one theta)."""
        return mlp(self.observation.size, self.hidden_sizes, self.action.size, self.activation)

    def outputs(self, thetas: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """(B, out) outputs of the network with parameters ``thetas[b]`` on ``states[b]``."""
        if thetas.shape != (states.shape[0], self.param_count):
            raise ValueError(
                f"thetas: expected shape ({states.shape[0]}, {self.param_count}), "
                f"got {tuple(thetas.shape)}"
            )
        h = states.reshape(states.shape[0], -1).float()
        offset = 0
        for k, (n_in, n_out) in enumerate(self.layers):
            weight = thetas[:, offset : offset + n_out * n_in].reshape(-1, n_out, n_in)
            offset += n_out * n_in
            bias = thetas[:, offset : offset + n_out]
            offset += n_out
            h = torch.einsum("boi,bi->bo", weight, h) + bias
            if k < len(self.layers) - 1:
                h = self.act_fn(h)
        return h

    def actions(self, thetas: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """(B,) int64 action indices, or (B, d) float32 actions within the bounds."""
        out = self.outputs(thetas, states)
        if self.action.is_discrete:
            return out.argmax(dim=-1)
        return self.offset.to(out.device) + self.scale.to(out.device) * torch.tanh(out)


class EliteUpdate(NamedTuple):
    """``cem_update``'s result: the elite rows (best first), the new mean and std (P,)."""

    elite: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def cem_update(
    thetas: torch.Tensor, returns: torch.Tensor, elite_count: int, noise: float, min_std: float
) -> EliteUpdate:
    """The cross-entropy step: fit a diagonal Gaussian to the best ``elite_count`` candidates.

    thetas (N, P), returns (N,). The elite are the rows of the highest returns (ties: the
    earlier row first); the new mean is their mean, the new variance their variance (over
    N_elite, not N_elite - 1) plus ``noise``, its square root floored at ``min_std``.
    """
    n = thetas.shape[0]
    if returns.shape != (n,):
        raise ValueError(f"returns: expected shape ({n},), got {tuple(returns.shape)}")
    if not 1 <= elite_count <= n:
        raise ValueError(f"elite_count: expected 1..{n}, got {elite_count}")
    if noise < 0:
        raise ValueError(f"noise: expected a variance >= 0, got {noise}")
    order = torch.sort(returns, descending=True, stable=True).indices
    elite = order[:elite_count]
    chosen = thetas[elite]
    mean = chosen.mean(dim=0)
    variance = chosen.var(dim=0, unbiased=False) + noise
    std = torch.sqrt(variance).clamp_min(min_std)
    return EliteUpdate(elite, mean, std)


class SearchDistribution(nn.Module):
    """The diagonal Gaussian over thetas that the shards serve: parameters ``mean``, ``log_std``.

    Its flat vector is ``[mean (P,), log_std (P,)]``. Built fresh, the mean is a
    freshly initialised network's parameters and every std ``initial_std``.
    """

    def __init__(self, policy: ParameterPolicy, initial_std: float) -> None:
        super().__init__()
        initial = torch.cat([p.detach().reshape(-1) for p in policy.network().parameters()])
        self.mean = nn.Parameter(initial)
        self.log_std = nn.Parameter(torch.full_like(initial, math.log(initial_std)))

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(count, P) candidates ``mean + std * N(0, I)``."""
        with torch.no_grad():
            noise = torch.randn(
                (count, self.mean.numel()), generator=generator, device=self.mean.device
            )
            return self.mean + self.log_std.exp() * noise
