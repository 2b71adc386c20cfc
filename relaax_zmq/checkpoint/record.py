"""``Checkpoint``: one shard's slice of the model and its training state at one global step."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from relaax_zmq.checkpoint.errors import CheckpointError

#: Names of optimizer/extras arrays and counters (they become HDF5 dataset and attribute names).
KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")

#: dtype kinds an array may have: bool, signed and unsigned integers, floats.
ARRAY_KINDS = "biuf"


@dataclass(eq=False, kw_only=True)
class Checkpoint:
    """One shard's state at ``global_step``.

    ``params`` is the float32 slice ``[offset, offset + len(params))`` of a model of
    ``param_count`` parameters. ``optimizer`` holds the optimizer state of the slice (Adam
    ``m``, ``v``, ``step``...), ``extras`` the algorithm's other arrays (observation-normalizer
    statistics, RNG state as integer arrays...), ``counters`` integers such as episodes.
    ``score`` is the value of ``best_metric`` (higher wins; NaN counts as no score).
    """

    global_step: int
    shard: int
    shards: int
    offset: int
    params: np.ndarray
    param_count: int
    algorithm: str
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    score: float | None = None
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        for name in ("global_step", "shard", "shards", "offset", "param_count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise CheckpointError(f"{name}: expected an int, got {value!r}")
            setattr(self, name, int(value))
        if self.global_step < 0 or self.offset < 0:
            raise CheckpointError("global_step and offset must be >= 0")
        if not 0 <= self.shard < self.shards:
            raise CheckpointError(f"shard {self.shard} is not in 0..{self.shards - 1}")
        params = self.params
        if not isinstance(params, np.ndarray) or params.dtype != np.float32 or params.ndim != 1:
            raise CheckpointError(f"params: expected a 1-D float32 array, got {_describe(params)}")
        if self.offset + params.size > self.param_count:
            raise CheckpointError(
                f"slice [{self.offset}, {self.offset + params.size}) exceeds "
                f"param_count {self.param_count}"
            )
        if not isinstance(self.algorithm, str):
            raise CheckpointError(f"algorithm: expected a str, got {self.algorithm!r}")
        _check_arrays("optimizer", self.optimizer)
        _check_arrays("extras", self.extras)
        for key, value in self.counters.items():
            _check_key("counters", key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise CheckpointError(f"counters[{key!r}]: expected an int, got {value!r}")
        self.counters = {key: int(value) for key, value in self.counters.items()}
        if self.score is not None:
            score = float(self.score)
            self.score = None if math.isnan(score) else score
        self.created = float(self.created)


def _check_key(group: str, key: object) -> None:
    if not isinstance(key, str) or not KEY.match(key):
        raise CheckpointError(
            f"{group}: name {key!r} must match {KEY.pattern} (it becomes an HDF5 name)"
        )


def _check_arrays(group: str, arrays: dict[str, np.ndarray]) -> None:
    for key, array in arrays.items():
        _check_key(group, key)
        if not isinstance(array, np.ndarray) or array.dtype.kind not in ARRAY_KINDS:
            raise CheckpointError(
                f"{group}[{key!r}]: expected a bool, int or float array, got {_describe(array)}"
            )


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
