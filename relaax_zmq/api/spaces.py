"""What a policy must know of its environment's spaces, as plain JSON-able data.

A ``SpaceInfo`` keeps the few facts that turn an environment's observations into the
network's input and the network's actions into the environment's (``relaax_zmq.envs.spaces``
does the same for clients): a Discrete observation becomes a one-hot vector, a Discrete
action is offset by the space's ``start``. It travels inside a saved policy, so that
``Policy.predict`` takes what the environment gives and returns what it takes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class SpaceInfo:
    """``kind``: box, discrete, multi_binary, multi_discrete or other; ``n``/``start``
    for discrete spaces; ``shape`` and ``dtype`` of one element."""

    kind: str
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    n: int = 0
    start: int = 0

    @classmethod
    def of(cls, space: spaces.Space) -> SpaceInfo:
        """The facts of a gymnasium space."""
        shape = tuple(int(d) for d in (space.shape or ()))
        dtype = str(space.dtype) if space.dtype is not None else "float32"
        if isinstance(space, spaces.Discrete):
            return cls("discrete", (), dtype, int(space.n), int(space.start))
        kinds = {
            spaces.Box: "box",
            spaces.MultiBinary: "multi_binary",
            spaces.MultiDiscrete: "multi_discrete",
        }
        return cls(kinds.get(type(space), "other"), shape, dtype)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpaceInfo:
        return cls(**{**data, "shape": tuple(data.get("shape", ()))})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def observations(self, obs: Any) -> tuple[np.ndarray, bool]:
        """(the network's input batch, whether ``obs`` was a single observation)."""
        if self.kind == "discrete":
            index = np.asarray(obs, np.int64)
            single = index.ndim == 0
            return np.eye(self.n, dtype=np.float32)[index.reshape(-1) - self.start], single
        array = np.asarray(obs)
        if self.kind in ("multi_binary", "multi_discrete"):
            array = array.astype(np.float32)
        single = array.shape == self.shape
        return (array[None] if single else array), single

    def actions(self, actions: np.ndarray) -> np.ndarray:
        """The environment's actions for the network's."""
        if self.kind == "discrete":
            return actions.astype(np.int64) + self.start
        if self.kind == "box":
            return actions.astype(self.dtype, copy=False)
        return actions
