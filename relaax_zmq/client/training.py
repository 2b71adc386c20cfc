"""``TrainingBase``: the episode loop of one environment session, with reconnect.

A subclass says how to reset and step its environment; ``run`` does the rest:
init the session, step episodes through the agent, truncate long episodes
(``max_episode_steps``, ``episode_timeout``), start over when the server
restarts the episode (``EpisodeRestart``: the cut episode is not counted),
report each finished episode's reward (log, metrics ``episode_reward``,
``episode_length`` and ``env_steps``, the returned list) and disconnect cleanly at the end.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from relaax_zmq.client.proxy import AgentProxy
from relaax_zmq.errors import EpisodeRestart
from relaax_zmq.metrics import names

log = logging.getLogger("relaax_zmq.client.training")


class TrainingBase(ABC):
    """Drive one environment with the agent behind ``proxy``.

    Args:
        proxy: the session's ``AgentProxy`` (connected, initialised and
            disconnected by ``run``).
        seed: seed of the environment (subclasses use it), or None.
        max_episode_steps: truncate an episode after this many steps.
        episode_timeout: truncate an episode after this many seconds.
        exploit: open the session in exploit mode (act only, no learning).
    """

    def __init__(
        self,
        proxy: AgentProxy,
        *,
        seed: int | None = None,
        max_episode_steps: int | None = None,
        episode_timeout: float | None = None,
        exploit: bool = False,
    ) -> None:
        self.agent = proxy
        self.seed = seed
        self.max_episode_steps = max_episode_steps
        self.episode_timeout = episode_timeout
        self.exploit = exploit
        self.restarts = 0  #: episodes cut by EpisodeRestart
        self._unreported = 0  # environment steps since the last ``env_steps`` metric
        self._stop = threading.Event()

    @abstractmethod
    def reset_env(self) -> Any:
        """Start a new episode of the environment; return the first observation."""

    @abstractmethod
    def step_env(self, action: Any) -> tuple[float, Any, bool, bool]:
        """Apply ``action``; return (reward, observation, terminal, truncated)."""

    def close_env(self) -> None:
        """Release the environment (called once at the end of ``run``)."""
        return None

    def stop(self) -> None:
        """Ask ``run`` to stop after the current step (safe from a signal handler or thread)."""
        self._stop.set()

    def run(self, max_episodes: int | None = None) -> list[float]:
        """Run episodes until ``max_episodes`` finished (None: until ``stop``).

        Returns the reward of every finished episode, in order.
        """
        rewards: list[float] = []
        try:
            self.agent.init(exploit=self.exploit)
            while not self._stop.is_set() and (max_episodes is None or len(rewards) < max_episodes):
                try:
                    episode = self._episode()
                except EpisodeRestart as exc:
                    self.restarts += 1
                    log.warning(
                        "episode %d cut short (%s): starting it again", len(rewards) + 1, exc
                    )
                    continue
                if episode is None:
                    break
                total, steps = episode
                rewards.append(total)
                log.info("episode %d: reward %g in %d steps", len(rewards), total, steps)
        finally:
            self.agent.disconnect()
            self.close_env()
        return rewards

    def _episode(self) -> tuple[float, int] | None:
        """One episode: (total reward, steps), or None when stopped midway."""
        state = self.reset_env()
        reward: float | None = None
        total, steps, start = 0.0, 0, time.monotonic()
        while not self._stop.is_set():
            action = self.agent.update(reward=reward, state=state)
            reward, state, terminal, truncated = self.step_env(action)
            reward = float(reward)
            total += reward
            steps += 1
            self._unreported += 1
            if self.max_episode_steps is not None and steps >= self.max_episode_steps:
                truncated = True
            if self.episode_timeout is not None:
                truncated = truncated or time.monotonic() - start >= self.episode_timeout
            if terminal or truncated:
                self.agent.metrics.scalar(names.EPISODE_REWARD, total)
                self.agent.metrics.scalar(names.EPISODE_LENGTH, steps)
                # cut episodes' steps included: the sum over a run counts every step
                self.agent.metrics.scalar(names.ENV_STEPS, self._unreported)
                self.agent.metrics.scalar(names.EPISODES, 1)
                self._unreported = 0
                try:
                    self.agent.update(
                        reward=reward, state=state, terminal=terminal, truncated=truncated
                    )
                except EpisodeRestart:
                    pass  # the episode is over anyway; the next one starts fresh
                return total, steps
        return None
