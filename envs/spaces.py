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
from gymnasium.vector.utils import batch_space, iterate


def observations_converter(space: spaces.Space) -> Callable[[Any], np.ndarray]:
    """A function from a batch of observations of ``space`` (first axis: the rows) to the
    (rows, ...) array sent as their states, converted at once where the space allows."""
    if isinstance(space, spaces.Box):
        return lambda batch: np.asarray(batch, dtype=space.dtype)
    if isinstance(space, spaces.Discrete):
        eye, start = np.eye(int(space.n), dtype=np.float32), int(space.start)
        return lambda batch: eye[np.asarray(batch, np.int64).reshape(-1) - start]
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return lambda batch: np.asarray(batch, dtype=np.float32)
    # Dict, Tuple ...: a VectorEnv batches them by part; gymnasium's ``iterate`` gives the rows
    return lambda batch: np.stack(
        [np.asarray(spaces.flatten(space, obs), np.float32) for obs in _unbatched(space, batch)]
    )


def actions_converter(space: spaces.Space) -> Callable[[Any], np.ndarray]:
    """A function from an agent's actions for a batch of rows to actions of ``space``, one
    per row (a Discrete space's indices offset by its ``start``, a Box's clipped)."""
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return lambda actions: _rows(actions, ())[:, 0].astype(np.int64) + start
    if isinstance(space, spaces.Box):
        low, high = space.low, space.high
        return lambda actions: np.clip(
            _rows(actions, space.shape).astype(space.dtype, copy=False), low, high
        )
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return lambda actions: _rows(actions, space.shape).astype(space.dtype, copy=False)
    raise TypeError(f"unsupported action space {space!r}: expected Discrete, Box or Multi*")


def observation_converter(space: spaces.Space) -> Callable[[Any], np.ndarray]:
    """A function from one observation of ``space`` to the array sent as its state."""
    if isinstance(space, (spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)):
        batch = observations_converter(space)
        return lambda obs: batch([obs])[0]
    if isinstance(space, spaces.Box):
        return lambda obs: np.asarray(obs, dtype=space.dtype)
    return lambda obs: np.asarray(spaces.flatten(space, obs), dtype=np.float32)


def action_converter(space: spaces.Space) -> Callable[[Any], Any]:
    """A function from an agent's action (array or scalar) to an action of ``space``."""
    batch = actions_converter(space)
    if isinstance(space, spaces.Discrete):
        return lambda action: int(batch(np.asarray(action).reshape(1, -1))[0])
    return lambda action: batch(np.asarray(action)[None])[0]


def _unbatched(space: spaces.Space, batch: Any) -> Any:
    """The rows of a batch of a composite space: a list as it is, a VectorEnv's batch (a
    dict or tuple of batched parts) through gymnasium's ``iterate``."""
    if isinstance(batch, list):
        return batch
    leaf = batch
    while isinstance(leaf, (dict, tuple)):
        leaf = next(iter(leaf.values())) if isinstance(leaf, dict) else leaf[0]
    return iterate(batch_space(space, len(leaf)), batch)


def _rows(actions: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``actions`` as (rows, *shape); a Discrete space's (shape ()) as (rows, 1+)."""
    array = np.asarray(actions)
    return array.reshape(len(array), -1) if not shape else array.reshape(len(array), *shape)
