"""Conversions between gymnasium spaces and what travels over RLX.

Observations: a ``Box`` keeps its dtype (uint8 images travel as uint8), a
``Discrete`` becomes a one-hot float32 vector, ``MultiBinary``/``MultiDiscrete``
a float32 array of their shape (an algorithm's ``input.dtype`` is float32, float64
or uint8), anything else (Dict, Tuple...) ``gymnasium.spaces.flatten``'s vector. Actions: an agent's action for a ``Discrete`` space is an index
(``space.start`` is added), for a ``Box`` a float array clipped to the bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces


def observation_converter(space: spaces.Space) -> Callable[[Any], np.ndarray]:
    """A function from one observation of ``space`` to the array sent as its state."""
    if isinstance(space, spaces.Box):
        return lambda obs: np.asarray(obs, dtype=space.dtype)
    if isinstance(space, spaces.Discrete):
        eye = np.eye(int(space.n), dtype=np.float32)
        return lambda obs: eye[int(obs) - int(space.start)]
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return lambda obs: np.asarray(obs, dtype=np.float32)
    return lambda obs: np.asarray(spaces.flatten(space, obs), dtype=np.float32)


def action_converter(space: spaces.Space) -> Callable[[Any], Any]:
    """A function from an agent's action (array or scalar) to an action of ``space``."""
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return lambda action: int(np.asarray(action).reshape(-1)[0]) + start
    if isinstance(space, spaces.Box):
        low, high = space.low, space.high
        return lambda action: np.clip(
            np.asarray(action, dtype=space.dtype).reshape(space.shape), low, high
        )
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return lambda action: np.asarray(action, dtype=space.dtype).reshape(space.shape)
    raise TypeError(f"unsupported action space {space!r}: expected Discrete, Box or Multi*")
