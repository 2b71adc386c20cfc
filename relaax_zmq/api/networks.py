"""An app's trained policy as one torch module: normalisation, network and action rule.

``policy_module(config, params, statistics)`` builds the algorithm's network with its
declared ``model`` (``relaax_zmq.core.Algorithm``), loads the flat parameter vector
and wraps what an agent does for a session: observations normalised with shard 0's
statistics (when ``input.normalize``), then the action. Actor-critic algorithms act
by their distribution (its mode, or a sample when not deterministic; a Gaussian mean
tanh-squashed where configured; an LSTM's state carried by the caller); dqn by the
argmax of Q; ddpg by its deterministic actor; cem by its search distribution's mean
network. Continuous actions are clipped to the bounds, as clients get them.
``forward`` is the deterministic action of a feed-forward policy, what
``relaax-zmq export`` traces into TorchScript or ONNX.
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
from relaax_zmq.config import AppConfig
from relaax_zmq.core import Algorithm
from relaax_zmq.errors import RelaaxError
from relaax_zmq.runtime.registry import load_algorithm

#: An LSTM's (h, c), each (B, size); None for a feed-forward policy.
Memory = tuple[torch.Tensor, torch.Tensor] | None


class PolicyError(RelaaxError):
    """A policy cannot be built, loaded or used: the message says why."""


class PolicyModule(nn.Module):
    """observations (B, *shape) -> actions: (B,) int64 or (B, d) float32 (module docstring)."""

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
        self.input_shape: tuple[int, ...] = ()  #: one observation as the network takes it
        self.input_dtype = "float32"
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else [0.0]).float())
        self.register_buffer("std", torch.as_tensor(std if std is not None else [1.0]).float())
        self.register_buffer("low", torch.as_tensor(low if low is not None else [0.0]).float())
        self.register_buffer("high", torch.as_tensor(high if high is not None else [0.0]).float())

    @property
    def recurrent(self) -> bool:
        """The policy keeps an LSTM state between steps."""
        return isinstance(self.net, ActorCritic) and self.net.core is not None

    def initial_memory(self, batch: int) -> Memory:
        """Zero LSTM state for ``batch`` sessions (None without an LSTM)."""
        return self.net.initial_memory(batch) if self.recurrent else None

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """The deterministic actions of a feed-forward policy."""
        return self.act(observations)[0]

    def act(
        self, observations: torch.Tensor, memory: Memory = None, deterministic: bool = True
    ) -> tuple[torch.Tensor, Memory]:
        """(actions, the LSTM's next state) for ``observations``; sampled unless
        ``deterministic`` (actor-critic algorithms; the others act greedily either way)."""
        x = self._normalized(observations)
        if self.kind == "actor_critic":
            if self.recurrent:
                head, memory = self.net(x, memory)[::2]
            else:  # the policy head alone: acting needs no value
                head = self.net.policy_head(self.net.torso(x))
            distribution = self.net.distribution(head)
            actions = distribution.mode() if deterministic else distribution.sample()
            return (actions if not self.bounded else self._clipped(actions)), memory
        if self.kind == "q":
            return self.net(x).argmax(dim=-1), None
        out = self.net(x)  # "deterministic": the network's output is the action
        return (out.argmax(dim=-1) if not self.bounded else self._clipped(out)), None

    def _normalized(self, x: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return x
        x = (x.float() - self.mean) / self.std
        return x.clamp(-self.clip, self.clip) if self.clip > 0 else x

    def _clipped(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def algorithm_parts(config: AppConfig) -> tuple[Algorithm, typing.Any]:
    """(the app's algorithm declaration, its parsed hyperparameters)."""
    algorithm = load_algorithm(config.algorithm)
    if algorithm.model is None:
        raise PolicyError(f"{algorithm.name} declares no model: it has no policy to build")
    try:
        hyper = algorithm.parse(config.algorithm.config)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None
    return algorithm, hyper


def policy_module(
    config: AppConfig, params: np.ndarray, statistics: np.ndarray | None = None
) -> PolicyModule:
    """The app's policy with the flat ``params`` loaded (module docstring)."""
    algorithm, hyper = algorithm_parts(config)
    assert algorithm.model is not None
    model = algorithm.model(hyper)
    agent = importlib.import_module(algorithm.agent.__module__)
    try:
        load_flat(model, np.asarray(params, np.float32))
    except ValueError as exc:
        raise PolicyError(f"the weights do not fit the app's model: {exc}") from None
    action = hyper.output.spec()
    bounds: dict[str, typing.Any] = {}
    if not action.is_discrete:
        bounds = {"low": np.asarray(action.low), "high": np.asarray(action.high)}
    normal = _normalization(hyper, statistics)
    if isinstance(model, ActorCritic):
        module = PolicyModule(model, "actor_critic", squash=model.squash, **normal, **bounds)
    elif isinstance(model, QNetwork):
        module = PolicyModule(model, "q", **normal)
    elif hasattr(model, "actor"):  # ddpg: the deterministic actor
        module = PolicyModule(model.actor, "deterministic", **normal, **bounds)
    elif hasattr(model, "mean") and hasattr(agent, "build_policy"):  # cem: the mean network
        policy = agent.build_policy(hyper)
        net = policy.network()
        load_flat(net, model.mean.detach().numpy().astype(np.float32))
        module = PolicyModule(_MeanNetwork(net, policy), "deterministic", **normal, **bounds)
    else:
        raise PolicyError(f"do not know the policy of a {type(model).__name__}")
    observation = hyper.input.spec()
    module.input_shape, module.input_dtype = tuple(observation.shape), str(observation.dtype)
    return module


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


def _normalization(hyper: typing.Any, totals: np.ndarray | None) -> dict[str, typing.Any]:
    """mean/std/clip of the observation statistics (when the config normalises)."""
    if not getattr(hyper.input, "normalize", False):
        return {}
    if totals is None:
        raise PolicyError(
            "input.normalize is on but no observation statistics came with the weights"
        )
    stats = RunningMeanStd(hyper.input.spec().shape)
    stats.apply_global(np.asarray(totals, np.float64))
    return {"mean": stats.mean, "std": stats.std, "clip": hyper.input.clip}
