"""The checks behind ``relaax_zmq.core``'s specs: values an algorithm declares, refused early
with what was expected and what came."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from relaax_zmq.config.convert import from_mapping
from relaax_zmq.errors import ConfigError

C = TypeVar("C")

if TYPE_CHECKING:
    from relaax_zmq.core import OptimizerSpec, ParameterServerSpec, ParamGroup

#: Hyperparameters each optimizer accepts (the keyword arguments of its kernel).
OPTIMIZER_HYPERPARAMETERS: dict[str, frozenset[str]] = {
    "sgd": frozenset({"lr", "momentum", "dampening", "nesterov", "weight_decay"}),
    "rmsprop": frozenset({"lr", "decay", "eps", "eps_inside_sqrt"}),
    "adam": frozenset({"lr", "beta1", "beta2", "eps", "weight_decay"}),
}


def check_param_group(group: ParamGroup) -> None:
    if group.offset < 0 or group.count < 1:
        raise ValueError(
            f"param group: expected offset >= 0 and count >= 1, got {group.offset}, {group.count}"
        )
    if not group.lr_scale >= 0:
        raise ValueError(f"param group: expected lr_scale >= 0, got {group.lr_scale}")


def check_optimizer(spec: OptimizerSpec) -> None:
    allowed = OPTIMIZER_HYPERPARAMETERS.get(spec.name)
    if allowed is None:
        names = ", ".join(OPTIMIZER_HYPERPARAMETERS)
        raise ValueError(f"optimizer: expected one of {names}, got {spec.name!r}")
    unknown = set(spec.hyperparameters) - allowed
    if unknown:
        raise ValueError(
            f"optimizer {spec.name}: unknown hyperparameters {sorted(unknown)}; "
            f"expected some of {sorted(allowed)}"
        )
    if "lr" not in spec.hyperparameters:
        raise ValueError(f"optimizer {spec.name}: lr is required")
    ranges = sorted((g.offset, g.offset + g.count) for g in spec.groups)
    for (_, stop), (start, _) in zip(ranges, ranges[1:], strict=False):
        if start < stop:
            raise ValueError(f"optimizer {spec.name}: param groups overlap at {start}")


def check_server_spec(spec: ParameterServerSpec) -> None:
    count = spec.param_count
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"param_count: expected an int, got {type(count).__name__}")
    if count < 1:
        raise ValueError(f"param_count: expected an int >= 1, got {count}")
    from relaax_zmq.ps.wire import MAX_STATISTICS_VALUES

    size, most = spec.statistics_size, MAX_STATISTICS_VALUES
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= most:
        raise ValueError(f"statistics_size: expected an int in [0, {most}], got {size!r}")


def checked_vector(vector: object, param_count: int) -> np.ndarray:
    """``initial_parameters``' result: a (param_count,) float32 vector of finite values."""
    values = np.asarray(vector)
    if values.shape != (param_count,) or values.dtype != np.float32:
        raise ValueError(
            f"initial_parameters: expected ({param_count},) float32, "
            f"got {values.shape} {values.dtype}"
        )
    if not np.isfinite(values).all():
        raise ValueError("initial_parameters: expected finite values")
    return np.ascontiguousarray(values)


def parse_config(cls: type[C], mapping: Mapping[str, Any] | None, name: str) -> C:
    """``cls`` from ``algorithm.config``; ``ValueError`` naming the full key of a bad value."""
    try:
        return from_mapping(cls, dict(mapping or {}), "algorithm.config")
    except ConfigError as exc:
        raise ValueError(f"{name}: {exc}") from None
