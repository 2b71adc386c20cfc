"""The algorithm plugin API, parameter-server side: what a shard asks of an algorithm.

An algorithm whose agents learn through the parameter servers adds a module
``<package>.parameter_server`` next to ``<package>.agent``, defining
``make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec``.
Every shard and every worker calls it (workers for the vector's length and the
version rule): it must be cheap and deterministic.

The model's parameters are one flat float32 vector of ``param_count`` elements;
shard i owns the contiguous slice ``relaax_zmq.ps.shard_bounds(param_count,
shards)[i]`` and its optimizer state. ``initial_parameters(seed)`` returns the
whole vector and must return the same vector for the same seed in every process
(each shard keeps its own slice of it). Workers push gradients *of the loss*
(shards step against them) and read weights from ``AgentContext.parameters``
(``relaax_zmq.ps.ParameterClient``).

Shared statistics: a spec with ``statistics_size > 0`` gets one float64 vector of
that length on shard 0 that only ever grows by addition. Workers send deltas
(``ParameterClient.add_statistics``), shard 0 adds them, publishes the totals
(``ParameterClient.statistics``) and checkpoints them with its slice. Any
statistic made of sums fits: an observation normalizer's count, sum and sum of
squares, for example.

An algorithm without a ``parameter_server`` module (the fixed
``relaax_zmq.testing.linear_policy``) runs without shards;
``AgentContext.parameters`` is then None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: Hyperparameters each optimizer accepts (the keyword arguments of its kernel).
OPTIMIZER_HYPERPARAMETERS: dict[str, frozenset[str]] = {
    "sgd": frozenset({"lr", "momentum", "dampening", "nesterov", "weight_decay"}),
    "rmsprop": frozenset({"lr", "decay", "eps", "eps_inside_sqrt"}),
    "adam": frozenset({"lr", "beta1", "beta2", "eps", "weight_decay"}),
}


@dataclass(frozen=True)
class ParameterServerContext:
    """What a parameter-server spec is built from.

    Attributes:
        config: ``algorithm.config`` of the app (checked by the algorithm's own dataclass).
        seed: ``environment.seed``, or 0 when it is null: every process must agree on it.
        shard: the shard asking (None in a worker).
        shards: ``parameter_servers.shards``.
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    shard: int | None = None
    shards: int = 1


@dataclass(frozen=True)
class ParamGroup:
    """A range of the flat vector whose learning rate is ``lr_scale`` times the optimizer's.

    Like a torch parameter group: an actor and a critic in one vector may learn at
    different rates (scaling the gradient instead would not do: Adam ignores scale).
    """

    offset: int
    count: int
    lr_scale: float

    def __post_init__(self) -> None:
        if self.offset < 0 or self.count < 1:
            raise ValueError(
                f"param group: expected offset >= 0 and count >= 1, got {self.offset}, {self.count}"
            )
        if not self.lr_scale >= 0:
            raise ValueError(f"param group: expected lr_scale >= 0, got {self.lr_scale}")


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer every shard runs over its slice (``relaax_zmq.kernels``).

    Attributes:
        name: ``sgd`` (``kernels.sgd_step``: torch.optim.SGD), ``rmsprop``
            (``kernels.rmsprop_step``) or ``adam`` (``kernels.adam_step``: torch.optim.Adam).
        hyperparameters: keyword arguments of that kernel (``lr`` is required;
            ``OPTIMIZER_HYPERPARAMETERS`` lists the others).
        lr_schedule: the learning rate as a function of the global step (a linear decay,
            say); None: ``hyperparameters["lr"]`` throughout.
        groups: ranges of the vector with their own learning-rate scale (non-overlapping);
            the rest learns at scale 1.
    """

    name: Literal["sgd", "rmsprop", "adam"]
    hyperparameters: Mapping[str, float | bool] = field(default_factory=dict)
    lr_schedule: Callable[[int], float] | None = None
    groups: tuple[ParamGroup, ...] = ()

    def __post_init__(self) -> None:
        allowed = OPTIMIZER_HYPERPARAMETERS.get(self.name)
        if allowed is None:
            names = ", ".join(OPTIMIZER_HYPERPARAMETERS)
            raise ValueError(f"optimizer: expected one of {names}, got {self.name!r}")
        unknown = set(self.hyperparameters) - allowed
        if unknown:
            raise ValueError(
                f"optimizer {self.name}: unknown hyperparameters {sorted(unknown)}; "
                f"expected some of {sorted(allowed)}"
            )
        if "lr" not in self.hyperparameters:
            raise ValueError(f"optimizer {self.name}: lr is required")
        ranges = sorted((g.offset, g.offset + g.count) for g in self.groups)
        for (_, stop), (start, _) in zip(ranges, ranges[1:], strict=False):
            if start < stop:
                raise ValueError(f"optimizer {self.name}: param groups overlap at {start}")

    def learning_rate(self, global_step: int) -> float:
        """The learning rate at ``global_step`` (before any group's scale)."""
        if self.lr_schedule is None:
            return float(self.hyperparameters["lr"])
        return float(self.lr_schedule(global_step))


@dataclass(frozen=True)
class ParameterServerSpec:
    """The parameter-server side of an algorithm.

    Attributes:
        param_count: length of the flat parameter vector.
        initial_parameters: ``seed -> (param_count,) float32``, deterministic.
        optimizer: how shards apply gradients.
        allow_mixed_versions: with ``parameter_servers.update: async``, the agents may
            run a forward pass on slices of different versions (a weight vector
            assembled while shards advance); False makes them wait for one version
            across all shards, as ``update: sync`` always does.
        statistics_size: length of the shared statistics vector (0: none; module doc).
    """

    param_count: int
    initial_parameters: Callable[[int], np.ndarray]
    optimizer: OptimizerSpec
    allow_mixed_versions: bool = False
    statistics_size: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.param_count, bool) or not isinstance(self.param_count, int):
            raise TypeError(f"param_count: expected an int, got {type(self.param_count).__name__}")
        if self.param_count < 1:
            raise ValueError(f"param_count: expected an int >= 1, got {self.param_count}")
        from relaax_zmq.ps.wire import MAX_STATISTICS_VALUES

        size, most = self.statistics_size, MAX_STATISTICS_VALUES
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= most:
            raise ValueError(f"statistics_size: expected an int in [0, {most}], got {size!r}")

    def initial_vector(self, seed: int) -> np.ndarray:
        """``initial_parameters(seed)`` checked: a (param_count,) float32 vector, finite."""
        vector = np.asarray(self.initial_parameters(seed))
        if vector.shape != (self.param_count,) or vector.dtype != np.float32:
            raise ValueError(
                f"initial_parameters: expected ({self.param_count},) float32, "
                f"got {vector.shape} {vector.dtype}"
            )
        if not np.isfinite(vector).all():
            raise ValueError("initial_parameters: expected finite values")
        return np.ascontiguousarray(vector)
