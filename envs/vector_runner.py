"""``VectorRunner``: one process drives N gymnasium environments as one block of N sessions.

Every step is one batched update (``VectorAgentProxy``): rewards (N,),
states (N, ...) and per-session terminal/truncated flags. The environments are
managed here, each resetting on its own (per-environment autoreset).

Convention for episode boundaries (a batched update has one reward tensor for
all N sessions, while a session's first step of an episode carries no reward):

- the step that ends environment i's episode is sent with its reward, its final
  observation and its terminal/truncated flag in row i; the action returned for
  that row is discarded;
- on the next update row i holds the reset observation of the new episode, with
  flags 0 and reward NaN (no reward: the worker treats the step after a
  terminal/truncated row as an episode start and ignores that value);
- the very first update of the block, and the first after an ``EpisodeRestart``
  (which resets every environment), carries no reward tensor at all.

With ``max_episodes`` each environment counts its own episodes; one that is
done keeps stepping (its further episodes are not reported) until every
environment is done, since a block's sessions step together.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np

from relaax_zmq.client import EpisodeRestart, VectorAgentProxy
from relaax_zmq.metrics import names

from .spaces import action_converter, observation_converter
from .threads import run_in_threads

log = logging.getLogger("relaax_zmq.envs.vector")


class VectorRunner:
    """Step ``envs`` together as the sessions of ``proxy``'s block.

    Args:
        proxy: a ``VectorAgentProxy`` of ``len(envs)`` sessions.
        envs: the environments (same spaces).
        seed: base seed; environment i is seeded with ``seed + i`` at its first reset.
        max_episode_steps, episode_timeout: truncate longer episodes.
        exploit: open the block in exploit mode.
        finished: the list ``finished`` appends to (several runners may share one).
    """

    def __init__(
        self,
        proxy: VectorAgentProxy,
        envs: Sequence[gymnasium.Env],
        *,
        seed: int | None = None,
        max_episode_steps: int | None = None,
        episode_timeout: float | None = None,
        exploit: bool = False,
        finished: list[float] | None = None,
    ) -> None:
        if len(envs) != proxy.n:
            raise ValueError(f"{len(envs)} environments for a block of {proxy.n} sessions")
        self.agent = proxy
        self.envs = list(envs)
        self.seed = seed
        self.max_episode_steps = max_episode_steps
        self.episode_timeout = episode_timeout
        self.exploit = exploit
        self.restarts = 0  #: EpisodeRestart received
        self.episodes: list[list[float]] = [[] for _ in self.envs]  #: per environment
        #: every reported episode reward, in finishing order
        self.finished: list[float] = [] if finished is None else finished
        self.steps = 0  #: environment steps taken (all environments)
        self._reported = 0  # ``steps`` when ``env_steps`` was last sent
        self._observation = observation_converter(self.envs[0].observation_space)
        self._action = action_converter(self.envs[0].action_space)
        self._seeded = [False] * len(self.envs)
        self._stop = threading.Event()

    @classmethod
    def make(
        cls, proxy: VectorAgentProxy, env_fn: Callable[[], gymnasium.Env], **options: Any
    ) -> VectorRunner:
        """A runner of ``proxy.n`` environments built by ``env_fn``."""
        return cls(proxy, [env_fn() for _ in range(proxy.n)], **options)

    def stop(self) -> None:
        """Ask ``run`` to stop before its next step."""
        self._stop.set()

    def run(self, max_episodes: int | None = None) -> list[float]:
        """Run until every environment finished ``max_episodes`` (None: until ``stop``).

        Returns every reported episode reward in the order they finished
        (``episodes`` has them per environment).
        """
        finished = self.finished
        try:
            self.agent.init(exploit=self.exploit)
            while not self._stop.is_set() and not self._done(max_episodes):
                try:
                    self._steps(max_episodes, finished)
                except EpisodeRestart as exc:
                    self.restarts += 1
                    log.warning("block restarted (%s): every environment starts again", exc)
        finally:
            self.agent.disconnect()
            for env in self.envs:
                env.close()
        return finished

    def _done(self, max_episodes: int | None) -> bool:
        return max_episodes is not None and all(len(e) >= max_episodes for e in self.episodes)

    def _reset(self, i: int) -> np.ndarray:
        seed = None if self._seeded[i] or self.seed is None else self.seed + i
        self._seeded[i] = True
        obs, _ = self.envs[i].reset(seed=seed)
        return self._observation(obs)

    def _steps(self, max_episodes: int | None, finished: list[float]) -> None:
        """Fresh episodes for every environment, stepped until done, stopped or restarted."""
        n = len(self.envs)
        states = [self._reset(i) for i in range(n)]
        rewards: np.ndarray | None = None
        terminal, truncated = np.zeros(n, bool), np.zeros(n, bool)
        totals, steps = np.zeros(n), np.zeros(n, int)
        starts = np.full(n, time.monotonic())
        while not self._stop.is_set():
            actions = self.agent.update(rewards, np.stack(states), terminal, truncated)
            if self._done(max_episodes):
                return  # the last episode ends were just sent
            ended = terminal | truncated
            rewards = np.full(n, np.nan, np.float32)
            terminal, truncated = np.zeros(n, bool), np.zeros(n, bool)
            reported = 0  # episodes reported on this step
            for i, env in enumerate(self.envs):
                if ended[i]:
                    states[i] = self._reset(i)
                    totals[i], steps[i], starts[i] = 0.0, 0, time.monotonic()
                    continue
                obs, reward, term, trunc, _ = env.step(self._action(actions[i]))
                self.steps += 1
                states[i] = self._observation(obs)
                rewards[i] = reward
                totals[i] += reward
                steps[i] += 1
                trunc = trunc or self._too_long(steps[i], starts[i])
                terminal[i], truncated[i] = term, trunc
                if (term or trunc) and (
                    max_episodes is None or len(self.episodes[i]) < max_episodes
                ):
                    self.episodes[i].append(float(totals[i]))
                    finished.append(float(totals[i]))
                    # episodes ending together: one mean per flush (the episode end flushes)
                    self.agent.metrics.mean(names.EPISODE_REWARD, float(totals[i]))
                    self.agent.metrics.mean(names.EPISODE_LENGTH, float(steps[i]))
                    reported += 1
                    log.info(
                        "env %d episode %d: reward %g in %d steps",
                        i,
                        len(self.episodes[i]),
                        totals[i],
                        steps[i],
                    )
            if reported:
                # the steps of every environment since the last report, with the episode ends
                self.agent.metrics.scalar(names.ENV_STEPS, self.steps - self._reported)
                self.agent.metrics.scalar(names.EPISODES, reported)
                self._reported = self.steps

    def _too_long(self, steps: int, start: float) -> bool:
        if self.max_episode_steps is not None and steps >= self.max_episode_steps:
            return True
        return self.episode_timeout is not None and time.monotonic() - start >= self.episode_timeout


class VectorBlocks:
    """Several ``VectorRunner`` blocks stepped concurrently (a thread each) and seen as one
    runner: one ``finished`` list for all of them, ``steps`` summed. While one block's
    environments step, another's request is in flight, so the client, the broker and the
    worker work at the same time."""

    def __init__(self, runners: Sequence[VectorRunner]) -> None:
        self.runners = list(runners)
        self.finished = self.runners[0].finished
        if any(r.finished is not self.finished for r in self.runners):
            raise ValueError("the blocks must share one finished list")

    @property
    def steps(self) -> int:
        """Environment steps taken by every block."""
        return sum(r.steps for r in self.runners)

    @property
    def restarts(self) -> int:
        """EpisodeRestarts every block has received."""
        return sum(r.restarts for r in self.runners)

    def stop(self) -> None:
        """Ask every block to stop before its next step."""
        for runner in self.runners:
            runner.stop()

    def run(self, max_episodes: int | None = None) -> list[float]:
        """Run every block until it is done (``VectorRunner.run``); the first block to fail
        stops the others and its error is raised here."""
        errors: list[BaseException] = []

        def target(runner: VectorRunner) -> None:
            try:
                runner.run(max_episodes)
            except BaseException as exc:
                errors.append(exc)
                self.stop()

        run_in_threads([functools.partial(target, r) for r in self.runners], "block")
        if errors:
            raise errors[0]
        return self.finished
