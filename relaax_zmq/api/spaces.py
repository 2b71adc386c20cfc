"""What a policy must know of its environment's spaces, as plain JSON-able data.

A ``SpaceInfo`` keeps the few facts that turn an environment's observations into the
network's input and the network's actions into the environment's (``relaax_zmq.envs.spaces``
does the same for clients): a Discrete observation becomes a one-hot vector, a Discrete
action is offset by the space's ``start``. It travels inside a saved policy, so that
``Policy.predict`` takes what the environment gives and returns what it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from relaax_zmq.envs.spaces import actions_converter, observations_converter


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

    def space(self) -> spaces.Space | None:
        """A gymnasium space with these facts (bounds unknown: open), None for "other"."""
        if self.kind == "discrete":
            return spaces.Discrete(self.n, start=self.start)
        if self.kind == "other":
            return None
        dtype = np.dtype(self.dtype if self.kind == "box" else "float32")  # Multi*: as float32
        if dtype.kind in "iu":  # integer (images): the dtype's own range
            info = np.iinfo(dtype)
            return spaces.Box(info.min, info.max, self.shape, dtype)
        return spaces.Box(-np.inf, np.inf, self.shape, dtype)

    def observations(self, obs: Any) -> tuple[np.ndarray, bool]:
        """(the network's input batch, whether ``obs`` was a single observation), converted
        as clients convert them (``relaax_zmq.envs.spaces``)."""
        array = np.asarray(obs)
        single = array.ndim == 0 if self.kind == "discrete" else array.shape == self.shape
        batch = array[None] if single else array
        return self._converters[0](batch), single

    def actions(self, actions: np.ndarray) -> np.ndarray:
        """The environment's actions for the network's (a Discrete space's ``start`` added)."""
        return self._converters[1](actions)

    @cached_property
    def _converters(self) -> tuple[Callable[[Any], np.ndarray], Callable[[Any], np.ndarray]]:
        """(observations, actions) converters of ``space()``, made once (``predict`` is hot)."""
        space = self.space()
        if space is None:
            return (np.asarray, np.asarray)
        return observations_converter(space), actions_converter(space)
