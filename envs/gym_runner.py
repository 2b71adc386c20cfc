"""``GymRunner``: one session playing any gymnasium environment.

``GymRunner(proxy, "CartPole-v1", seed=0)`` (or an environment instance)
converts observations and actions with ``relaax_zmq.envs.spaces`` and seeds the
environment once, at its first reset (later resets continue its random stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np

from relaax_zmq.client import AgentProxy, TrainingBase

from .spaces import action_converter, observation_converter


class GymRunner(TrainingBase):
    """A ``TrainingBase`` over a gymnasium environment (an id or an instance).

    Args:
        proxy: the session's ``AgentProxy``.
        env: a registered gymnasium id or a ``gymnasium.Env``.
        env_kwargs: keyword arguments of ``gymnasium.make`` (with an id).
        **options: ``TrainingBase`` options (seed, max_episode_steps, ...).
    """

    def __init__(
        self,
        proxy: AgentProxy,
        env: str | gymnasium.Env,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(proxy, **options)
        if isinstance(env, str):
            env = gymnasium.make(env, **dict(env_kwargs or {}))
        elif env_kwargs:
            raise ValueError("env_kwargs only apply to a gymnasium id")
        self.env: gymnasium.Env = env
        self._observation = observation_converter(env.observation_space)
        self._action = action_converter(env.action_space)
        self._seeded = False

    def reset_env(self) -> np.ndarray:
        seed = None if self._seeded else self.seed
        self._seeded = True
        obs, _ = self.env.reset(seed=seed)
        return self._observation(obs)

    def step_env(self, action: Any) -> tuple[float, np.ndarray, bool, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(self._action(action))
        return float(reward), self._observation(obs), bool(terminated), bool(truncated)

    def close_env(self) -> None:
        self.env.close()
