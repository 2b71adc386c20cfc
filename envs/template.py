"""Template of a custom environment runner: copy this file into your app and edit it.

A runner is a ``relaax_zmq.client.TrainingBase`` subclass with two hooks:

- ``reset_env() -> state``: start an episode, return its first observation;
- ``step_env(action) -> (reward, state, terminal, truncated)``: apply the
  agent's action (a numpy scalar or array), return what happened.

``run()`` (inherited) does everything else: it opens the session, sends each
observation and reward to the agent and gets its action, truncates episodes at
``environment.max_episode_steps``/``episode_timeout``, starts a new episode when
the server says so (``EpisodeRestart``), reports ``episode_reward`` and
disconnects at the end. Observations may be any numpy array (keep images
uint8); send the same shape and dtype every step.

Point the app at the class; ``environment.env_kwargs`` become constructor
keyword arguments (here ``size`` and ``step_penalty``)::

    environment:
      run: template.py:WalkRunner       # path relative to app.yaml
      env_kwargs: {size: 5}

The launcher constructs it as ``WalkRunner(proxy, **env_kwargs, seed=...,
max_episode_steps=..., episode_timeout=..., exploit=...)``; pass the last four
on to ``TrainingBase``. A gymnasium.Env subclass can be named instead of a
runner (it then also works with ``vectorized: true``).

The example: a walker on a line starts at 0 and must reach ``+size``; action 0
steps left, 1 steps right; every step costs ``step_penalty`` and reaching the
goal pays +1 and ends the episode. The observation is [position / size].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from relaax_zmq.client import AgentProxy, TrainingBase


class Walk:
    """The environment itself: a 1-D walk to a goal (plain Python, no gymnasium needed)."""

    def __init__(self, size: int = 5, step_penalty: float = 0.1) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.step_penalty = step_penalty
        self.position = 0

    def observation(self) -> np.ndarray:
        return np.array([self.position / self.size], np.float32)

    def reset(self) -> np.ndarray:
        self.position = 0
        return self.observation()

    def step(self, move: int) -> tuple[float, np.ndarray, bool]:
        """Move left (0) or right (1); the walker cannot pass -size."""
        self.position = max(self.position + (1 if move == 1 else -1), -self.size)
        at_goal = self.position >= self.size
        reward = (1.0 if at_goal else 0.0) - self.step_penalty
        return reward, self.observation(), at_goal


class WalkRunner(TrainingBase):
    """Connects ``Walk`` to the agent: the two hooks are all a runner needs."""

    def __init__(
        self, proxy: AgentProxy, *, size: int = 5, step_penalty: float = 0.1, **options: Any
    ) -> None:
        super().__init__(proxy, **options)  # seed, max_episode_steps, episode_timeout, exploit
        self.world = Walk(size, step_penalty)

    def reset_env(self) -> np.ndarray:
        return self.world.reset()

    def step_env(self, action: Any) -> tuple[float, np.ndarray, bool, bool]:
        # actions arrive as numpy values; an agent over 2 discrete actions sends 0 or 1
        reward, state, at_goal = self.world.step(int(np.asarray(action).reshape(-1)[0]))
        return reward, state, at_goal, False
