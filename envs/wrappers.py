"""Observation preprocessing named in ``environment.wrappers``, applied in order after ``make``.

Each entry is a name, optionally with arguments after a colon:

- ``atari``: the standard Atari preprocessing (gymnasium's ``AtariPreprocessing``: up to 30
  no-op starts, 4 frames per action with max-pooling, 84x84 grayscale uint8); make the
  ``ALE/...`` environment with ``env_kwargs: {frameskip: 1}`` (the wrapper skips frames);
- ``frame_stack:N``: the last N observations stacked on a new first axis (``(N, 84, 84)``);
- ``select:I,J,...``: keep only these entries of a vector observation (``select:0,2`` hides
  CartPole's velocities: a task that needs memory);
- ``clip_reward``: rewards clipped to their sign (-1, 0, +1), as DQN on Atari does.

``ALE/`` ids register ale-py's environments first (it ships the ROMs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from .wrapper_specs import parse_wrapper


class SelectObservation(gymnasium.ObservationWrapper):
    """Keep the entries ``indices`` of a 1-D Box observation."""

    def __init__(self, env: gymnasium.Env, indices: Sequence[int]) -> None:
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise ValueError(f"select: expected a 1-D Box observation, got {box}")
        if max(indices) >= box.shape[0]:
            raise ValueError(f"select: index {max(indices)} out of range 0..{box.shape[0] - 1}")
        self.indices = np.asarray(indices)
        self.observation_space = spaces.Box(
            box.low[self.indices], box.high[self.indices], dtype=box.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.indices]


def apply_wrappers(env: gymnasium.Env, specs: Sequence[str]) -> gymnasium.Env:
    """``env`` wrapped by each of ``specs`` in order."""
    for spec in specs:
        name, values = parse_wrapper(spec)
        if name == "atari":
            env = gymnasium.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4)
        elif name == "frame_stack":
            env = gymnasium.wrappers.FrameStackObservation(env, values[0])
        elif name == "select":
            env = SelectObservation(env, values)
        else:
            env = gymnasium.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
    return env


def make_env(
    name: str, env_kwargs: Mapping[str, Any] | None = None, wrappers: Sequence[str] = ()
) -> gymnasium.Env:
    """``gymnasium.make(name, **env_kwargs)`` with ``wrappers`` applied."""
    if name.startswith("ALE/"):
        import ale_py

        gymnasium.register_envs(ale_py)
    return apply_wrappers(gymnasium.make(name, **dict(env_kwargs or {})), wrappers)


def env_maker(
    name: str, env_kwargs: Mapping[str, Any] | None = None, wrappers: Sequence[str] = ()
) -> Callable[[], gymnasium.Env]:
    """A function building ``make_env(name, env_kwargs, wrappers)`` each time it is called."""
    for spec in wrappers:
        parse_wrapper(spec)  # refuse a bad spec before any environment exists
    kwargs = dict(env_kwargs or {})
    return lambda: make_env(name, kwargs, wrappers)
