"""The greedy policy of an app's algorithm as a plain torch module, from a weight vector.

``greedy_policy(config, weights)`` builds the algorithm's network with its declared
``model`` (``relaax_zmq.core.Algorithm``), loads
the flat vector (``algorithms.common.flat.load_flat``) and wraps what the agent does
for an exploit session: observations normalised with shard 0's statistics (when
``input.normalize``), then the distribution's mode (actor-critic algorithms: the
argmax of the logits, or the Gaussian mean, tanh-squashed where configured), the
argmax of Q (dqn), the deterministic actor (ddpg), or the search distribution's mean
network (cem); continuous actions clipped to the bounds, as clients get them.
Recurrent (LSTM) policies keep state between calls and are not exported.
"""

from __future__ import annotations

import importlib
import typing

import numpy as np
import torch
from torch import nn

from relaax_zmq.algorithms.common.flat import load_flat
from relaax_zmq.algorithms.common.networks import ActorCritic, QNetwork
from relaax_zmq.algorithms.common.normalizer import RunningMeanStd
from relaax_zmq.cli.common import CliError
from relaax_zmq.cli.weights import Weights
from relaax_zmq.config import AppConfig
from relaax_zmq.core import Algorithm
from relaax_zmq.runtime.registry import load_algorithm


class GreedyPolicy(nn.Module):
    """observations (B, *shape) -> greedy actions: (B,) int64 or (B, d) float32."""

    def __init__(
        self,
        net: nn.Module,
        kind: str,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        clip: float | None = None,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
        squash: bool = False,
    ) -> None:
        super().__init__()
        self.net = net.eval()
        self.kind = kind
        self.normalize = mean is not None
        self.clip = float(clip) if clip is not None else 0.0
        self.bounded = low is not None
        self.squash = squash
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else [0.0]).float())
        self.register_buffer("std", torch.as_tensor(std if std is not None else [1.0]).float())
        self.register_buffer("low", torch.as_tensor(low if low is not None else [0.0]).float())
        self.register_buffer("high", torch.as_tensor(high if high is not None else [0.0]).float())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = observations
        if self.normalize:
            x = (x.float() - self.mean) / self.std
            if self.clip > 0:
                x = x.clamp(-self.clip, self.clip)
        if self.kind == "actor_critic":
            head = self.net(x).head
            if not self.bounded:
                return head.argmax(dim=-1)
            actions = torch.tanh(head) if self.squash else head
        elif self.kind == "q":
            return self.net(x).argmax(dim=-1)
        else:  # "deterministic": the network's output is the action
            out = self.net(x)
            if not self.bounded:
                return out.argmax(dim=-1)
            actions = out
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def algorithm_parts(config: AppConfig) -> tuple[Algorithm, typing.Any]:
    """(the algorithm's declaration, its parsed hyperparameters)."""
    algorithm = load_algorithm(config.algorithm)
    if algorithm.model is None:
        raise CliError(f"{algorithm.name} declares no model: nothing to export")
    try:
        hyper = algorithm.parse(config.algorithm.config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return algorithm, hyper


def greedy_policy(config: AppConfig, weights: Weights) -> GreedyPolicy:
    """The app's greedy policy with ``weights`` loaded (module docstring)."""
    algorithm, hyper = algorithm_parts(config)
    assert algorithm.model is not None
    model = algorithm.model(hyper)
    agent = importlib.import_module(algorithm.agent.__module__)
    try:
        load_flat(model, weights.params)
    except ValueError as exc:
        raise CliError(f"the checkpoint does not fit the app's model: {exc}") from None
    action = hyper.output.spec()
    bounds: dict[str, typing.Any] = {}
    if not action.is_discrete:
        bounds = {"low": np.asarray(action.low), "high": np.asarray(action.high)}
    normal = _normalization(hyper, weights)
    if isinstance(model, ActorCritic):
        if model.core is not None:
            raise CliError("a recurrent (LSTM) policy keeps state between steps: not exported")
        return GreedyPolicy(model, "actor_critic", squash=model.squash, **normal, **bounds)
    if isinstance(model, QNetwork):
        return GreedyPolicy(model, "q", **normal)
    if hasattr(model, "actor"):  # ddpg: the deterministic actor
        return GreedyPolicy(model.actor, "deterministic", **normal, **bounds)
    if hasattr(model, "mean") and hasattr(agent, "build_policy"):  # cem: the mean network
        policy = agent.build_policy(hyper)
        net = policy.network()
        load_flat(net, model.mean.detach().numpy().astype(np.float32))
        return GreedyPolicy(_MeanNetwork(net, policy), "deterministic", **normal, **bounds)
    raise CliError(f"do not know the greedy policy of a {type(model).__name__}")


class _MeanNetwork(nn.Module):
    """CEM's network on flattened observations; continuous: ``offset + scale * tanh(out)``."""

    def __init__(self, net: nn.Module, policy: typing.Any) -> None:
        super().__init__()
        self.net = net
        self.continuous = not policy.action.is_discrete
        self.register_buffer("scale", policy.scale.clone() if self.continuous else torch.ones(1))
        self.register_buffer("offset", policy.offset.clone() if self.continuous else torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.reshape(x.shape[0], -1).float())
        return self.offset + self.scale * torch.tanh(out) if self.continuous else out


def _normalization(hyper: typing.Any, weights: Weights) -> dict[str, typing.Any]:
    """mean/std/clip of the observation statistics in shard 0's extras (when normalising)."""
    if not getattr(hyper.input, "normalize", False):
        return {}
    totals = weights.extras.get("statistics")
    if totals is None:
        raise CliError("input.normalize is on but the checkpoint holds no observation statistics")
    stats = RunningMeanStd(hyper.input.spec().shape)
    stats.apply_global(np.asarray(totals, np.float64))
    return {"mean": stats.mean, "std": stats.std, "clip": hyper.input.clip}
