"""``evaluate(policy, env)``: a policy's episodes on an environment, and their statistics."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium
import numpy as np

from relaax_zmq.api.spaces import SpaceInfo
from relaax_zmq.config.fitting import register_optional_envs
from relaax_zmq.envs.spaces import action_converter

#: What ``evaluate`` and ``learn`` take as an environment: a gymnasium id or a factory.
EnvSpec = str | Callable[[], gymnasium.Env]


class Predictor(Protocol):
    """What ``evaluate`` needs of a policy (``Policy``, ``ExportedPolicy``)."""

    def predict(
        self,
        observation: Any,
        deterministic: bool = True,
        state: Any = None,
        episode_start: Any = None,
    ) -> tuple[np.ndarray, Any]: ...


@dataclass
class Evaluation:
    """Episode returns and lengths of an evaluation; ``frames`` when rendered as rgb_array,
    at the environment's ``fps``."""

    returns: list[float]
    lengths: list[int]
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    fps: int = 30

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else math.nan

    def __str__(self) -> str:
        return f"{len(self.returns)} episodes: mean reward {self.mean:g} +/- {self.std:g}"


def make_env(env: EnvSpec | gymnasium.Env, render: str | None = None) -> gymnasium.Env:
    """A gymnasium environment from an id (ale-py's registered when installed), a factory
    or an environment (returned as it is)."""
    if isinstance(env, gymnasium.Env):
        return env
    if isinstance(env, str):
        register_optional_envs()
        return gymnasium.make(env, render_mode=render)
    made = env()
    if not isinstance(made, gymnasium.Env):
        raise TypeError(
            f"expected the factory to return a gymnasium.Env, got {type(made).__name__}"
        )
    return made


def evaluate(
    policy: Predictor,
    env: EnvSpec | gymnasium.Env,
    episodes: int = 20,
    *,
    render: str | None = None,
    deterministic: bool = True,
    seed: int | None = None,
) -> Evaluation:
    """Run ``episodes`` episodes of ``policy`` on ``env``; their returns and lengths.

    ``render``: None, "human" (a window) or "rgb_array" (frames kept in the result; an
    id is made with that render mode). ``seed`` seeds the first reset. An environment
    passed in is closed at the end too.
    """
    if episodes < 1:
        raise ValueError(f"expected episodes >= 1, got {episodes}")
    environment = make_env(env, render)
    knows_spaces = getattr(policy, "observation", None) is not None
    observation = SpaceInfo.of(environment.observation_space)
    action = action_converter(environment.action_space)
    result = Evaluation([], [], fps=int(environment.metadata.get("render_fps") or 30))
    try:
        for episode in range(episodes):
            obs, _ = environment.reset(seed=None if seed is None else seed + episode)
            state, start, total, length, done = None, True, 0.0, 0, False
            while not done:
                inputs = obs if knows_spaces else observation.observations(obs)[0][0]
                chosen, state = policy.predict(inputs, deterministic, state, [start])
                start = False
                step = chosen if knows_spaces else action(chosen)
                obs, reward, terminated, truncated, _ = environment.step(step)
                total, length = total + float(reward), length + 1
                done = terminated or truncated
                if render == "rgb_array":
                    result.frames.append(np.asarray(environment.render()))
            result.returns.append(total)
            result.lengths.append(length)
    finally:
        environment.close()
    return result
