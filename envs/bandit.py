"""The multi-armed bandit of RELAAX's default app, as a gymnasium environment, and its runner.

Pulling arm i draws z from a standard normal: the reward is +1 when z is above
the arm's value, else -1, so an arm's expected reward is ``-erf(value / sqrt 2)``
and the lowest value is the best arm (-5: almost always +1). The observation is
a constant vector (the bandit has no state); an episode is ``episode_length``
pulls, then it is truncated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from relaax_zmq.client import AgentProxy

from .gym_runner import GymRunner

#: RELAAX's arms: the fourth is the best.
DEFAULT_ARMS = (0.2, 0.0, -0.2, -5.0)


class BanditEnv(gymnasium.Env):
    """A k-armed bandit with +1/-1 rewards (see the module docstring); seed with ``reset``."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        arms: Sequence[float] = DEFAULT_ARMS,
        episode_length: int | None = 1000,
        state_size: int = 1,
    ) -> None:
        if len(arms) < 1:
            raise ValueError("a bandit needs at least one arm")
        self.arms = np.asarray(arms, np.float64)
        self.episode_length = episode_length
        self.action_space = spaces.Discrete(len(self.arms))
        self.observation_space = spaces.Box(1.0, 1.0, (state_size,), np.float32)
        self._state = np.ones(state_size, np.float32)
        self._steps = 0

    def expected_reward(self, arm: int) -> float:
        """The mean reward of pulling ``arm``: P(z > v) - P(z <= v) = -erf(v / sqrt 2)."""
        return -math.erf(float(self.arms[arm]) / math.sqrt(2.0))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        return self._state.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        arm = int(action)
        if not 0 <= arm < len(self.arms):
            raise ValueError(f"arm {arm} out of range 0..{len(self.arms) - 1}")
        reward = 1.0 if self.np_random.standard_normal() > self.arms[arm] else -1.0
        self._steps += 1
        truncated = self.episode_length is not None and self._steps >= self.episode_length
        return self._state.copy(), reward, False, truncated, {}


class BanditRunner(GymRunner):
    """``run: bandit``: one session pulling the arms of a ``BanditEnv``.

    ``arms``, ``episode_length`` and ``state_size`` come from ``environment.env_kwargs``.
    """

    def __init__(
        self,
        proxy: AgentProxy,
        *,
        arms: Sequence[float] = DEFAULT_ARMS,
        episode_length: int | None = 1000,
        state_size: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(proxy, BanditEnv(arms, episode_length, state_size), **options)
