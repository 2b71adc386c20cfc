"""A shard's optimizer: the state arrays of its slice and one fused kernel step per update."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from relaax_zmq import kernels
from relaax_zmq.learner import OptimizerSpec

#: State arrays each optimizer keeps, one float32 value per parameter.
STATE_ARRAYS = {
    "sgd": ("momentum_buf",),
    "rmsprop": ("square_avg",),
    "adam": ("exp_avg", "exp_avg_sq"),
}


class Optimizer:
    """Applies gradients to a float32 slice in place with ``relaax_zmq.kernels``.

    ``step`` counts the updates applied (Adam's bias correction uses it; SGD's
    momentum buffer starts as the first gradient, as torch does).
    """

    def __init__(self, spec: OptimizerSpec, size: int) -> None:
        self.spec = spec
        self.hyper = dict(spec.hyperparameters)
        self.step = 0
        names = STATE_ARRAYS[spec.name]
        if spec.name == "sgd" and not self.hyper.get("momentum", 0.0):
            names = ()  # plain SGD keeps no buffer
        self.arrays = {name: np.zeros(size, np.float32) for name in names}

    def apply(self, param: np.ndarray, grad: np.ndarray) -> None:
        """One step: ``param`` moves against ``grad`` (both float32, aligned, contiguous)."""
        name, h = self.spec.name, self.hyper
        if name == "sgd":
            buf = self.arrays.get("momentum_buf")
            kernels.sgd_step(param, grad, buf, **h, first_step=self.step == 0)
        elif name == "rmsprop":
            kernels.rmsprop_step(param, grad, self.arrays["square_avg"], **h)
        else:
            a = self.arrays
            kernels.adam_step(param, grad, a["exp_avg"], a["exp_avg_sq"], self.step + 1, **h)
        self.step += 1

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays, and ``step`` as a 0-d int64 array."""
        found = {name: array.copy() for name, array in self.arrays.items()}
        found["step"] = np.array(self.step, np.int64)
        return found

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what ``state`` returned (same optimizer, same slice length)."""
        expected = set(self.arrays) | {"step"}
        if set(state) != expected:
            raise ValueError(f"optimizer state: expected {sorted(expected)}, got {sorted(state)}")
        for name, array in self.arrays.items():
            value = np.asarray(state[name])
            if value.shape != array.shape:
                raise ValueError(
                    f"optimizer state {name}: expected {array.shape}, got {value.shape}"
                )
            array[...] = value
        step = int(np.asarray(state["step"]))
        if step < 0:
            raise ValueError(f"optimizer state step: expected >= 0, got {step}")
        self.step = step
