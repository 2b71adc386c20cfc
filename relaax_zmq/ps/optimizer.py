"""A shard's optimizer: the state arrays of its slice and one fused kernel step per update."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from relaax_zmq import kernels
from relaax_zmq.core import OptimizerSpec

#: State arrays each optimizer keeps, one float32 value per parameter.
STATE_ARRAYS = {
    "sgd": ("momentum_buf",),
    "rmsprop": ("square_avg",),
    "adam": ("exp_avg", "exp_avg_sq"),
}


def segments(spec: OptimizerSpec, offset: int, size: int) -> list[tuple[int, int, float]]:
    """``(start, stop, lr_scale)`` ranges, local to the slice ``[offset, offset + size)``,
    that cover it in order: the spec's groups clipped to the slice, scale 1 between them."""
    found: list[tuple[int, int, float]] = []
    at = 0
    for group in sorted(spec.groups, key=lambda g: g.offset):
        start = max(group.offset - offset, 0)
        stop = min(group.offset + group.count - offset, size)
        if start >= stop:
            continue
        if start > at:
            found.append((at, start, 1.0))
        found.append((start, stop, group.lr_scale))
        at = stop
    if at < size:
        found.append((at, size, 1.0))
    return found


def _ranges(
    pieces: list[np.ndarray], segments: list[tuple[int, int, float]]
) -> Iterator[tuple[int, int, np.ndarray, float]]:
    """``(start, stop, gradient piece, lr scale)`` where the pieces and the segments overlap."""
    at = 0
    for piece in pieces:
        end = at + piece.size
        for start, stop, scale in segments:
            lo, hi = max(start, at), min(stop, end)
            if lo < hi:
                yield lo, hi, piece[lo - at : hi - at], scale
        at = end


class Optimizer:
    """Applies gradients to a float32 slice in place with ``relaax_zmq.kernels``.

    ``step`` counts the updates applied (Adam's bias correction uses it; SGD's
    momentum buffer starts as the first gradient, as torch does). The learning rate
    follows the spec's schedule (``at_global_step``) and each parameter group's scale.

    Args:
        spec: the algorithm's optimizer.
        size: elements of the slice.
        offset: where the slice starts in the flat vector (places the param groups).
    """

    def __init__(self, spec: OptimizerSpec, size: int, offset: int = 0) -> None:
        self.spec = spec
        self.hyper = dict(spec.hyperparameters)
        self.lr = spec.learning_rate(0)
        self.step = 0
        self.segments = segments(spec, offset, size)
        names = STATE_ARRAYS[spec.name]
        if spec.name == "sgd" and not self.hyper.get("momentum", 0.0):
            names = ()  # plain SGD keeps no buffer
        self.arrays = {name: np.zeros(size, np.float32) for name in names}

    def at_global_step(self, global_step: int) -> None:
        """Set the learning rate the schedule gives for ``global_step``."""
        if self.spec.lr_schedule is not None:
            self.lr = self.spec.learning_rate(global_step)

    def apply(self, param: np.ndarray, grad: np.ndarray | Sequence[np.ndarray]) -> None:
        """One step: ``param`` moves against ``grad`` (float32, contiguous).

        ``grad`` may come in consecutive pieces (the frames it arrived in): each is
        applied where it lies, without assembling the vector.
        """
        pieces = [grad] if isinstance(grad, np.ndarray) else list(grad)
        if len(pieces) == 1 and len(self.segments) == 1:
            self._apply(param, pieces[0], self.arrays, self.lr)
        else:
            for start, stop, piece, scale in _ranges(pieces, self.segments):
                arrays = {k: v[start:stop] for k, v in self.arrays.items()}
                self._apply(param[start:stop], piece, arrays, self.lr * scale)
        self.step += 1

    def _apply(
        self, param: np.ndarray, grad: np.ndarray, arrays: dict[str, np.ndarray], lr: float
    ) -> None:
        name, h = self.spec.name, {**self.hyper, "lr": lr}
        if name == "sgd":
            buf = arrays.get("momentum_buf")
            kernels.sgd_step(param, grad, buf, **h, first_step=self.step == 0)
        elif name == "rmsprop":
            kernels.rmsprop_step(param, grad, arrays["square_avg"], **h)
        else:
            kernels.adam_step(
                param, grad, arrays["exp_avg"], arrays["exp_avg_sq"], self.step + 1, **h
            )

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
