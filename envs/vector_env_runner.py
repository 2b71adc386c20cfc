"""``VectorEnvRunner``: a ``gymnasium.vector.VectorEnv`` driven as one block of sessions.

A VectorEnv steps all its environments in one call and resets finished ones itself
(autoreset). Its default mode, ``NEXT_STEP``, maps one to one onto the block convention
of ``VectorRunner``: the step that ends environment i's episode is sent with its reward,
final observation and flag (the action returned for it is discarded); the next step
call resets environment i, ignoring its action, and that row goes out as the new
episode's first observation with a NaN reward. Nothing is lost or invented.

In the ``SAME_STEP`` and ``DISABLED`` modes the new episode's first action would have to
be chosen before the old episode's end is sent, which the block convention has no
row for. A ``SyncVectorEnv`` in those modes is driven exactly through its own
environments (``VectorRunner`` on ``env.envs``, see ``vector_env_runner``); any other
VectorEnv in those modes is refused with a message saying how to make it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from relaax_zmq.client import EpisodeRestart
from relaax_zmq.metrics import names

from .spaces import actions_converter, observations_converter
from .vector_runner import VectorRunner

log = logging.getLogger("relaax_zmq.envs.vector_env")


def autoreset_mode(env: VectorEnv) -> AutoresetMode:
    """The VectorEnv's autoreset mode (gymnasium's default, NEXT_STEP, when it says none)."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return AutoresetMode(mode) if not isinstance(mode, AutoresetMode) else mode


def vector_env_runner(proxy: Any, env: VectorEnv, **options: Any) -> VectorEnvRunner | VectorRunner:
    """The exact driver of ``env`` as ``proxy``'s block (module docstring); ValueError
    when the block's size differs or the mode cannot be driven exactly."""
    if proxy.n != env.num_envs:
        raise ValueError(f"a VectorEnv of {env.num_envs} environments for a block of {proxy.n}")
    mode = autoreset_mode(env)
    if mode is AutoresetMode.NEXT_STEP:
        kept = {k: v for k, v in options.items() if k in ("seed", "exploit", "finished")}
        return VectorEnvRunner(proxy, env, **kept)
    if isinstance(env, SyncVectorEnv):
        return VectorRunner(proxy, list(env.envs), **options)
    raise ValueError(
        f"a {type(env).__name__} in autoreset mode {mode.value} cannot be driven exactly "
        "(the first action of an episode would precede the end of the last one); "
        "make it with autoreset_mode=NEXT_STEP (gymnasium's default) or as a SyncVectorEnv"
    )


class VectorEnvRunner:
    """Step a NEXT_STEP-mode ``env`` as the sessions of ``proxy``'s block.

    The same surface as ``VectorRunner``: ``run``, ``stop``, ``steps``, ``finished``,
    ``episodes``, ``restarts``. ``seed``: the first reset seeds environment i with
    ``seed + i``. Time limits are the VectorEnv's own (its TimeLimit wrappers).
    """

    def __init__(
        self,
        proxy: Any,
        env: VectorEnv,
        *,
        seed: int | None = None,
        exploit: bool = False,
        finished: list[float] | None = None,
    ) -> None:
        if autoreset_mode(env) is not AutoresetMode.NEXT_STEP:
            raise ValueError(f"expected a VectorEnv in NEXT_STEP mode, got {autoreset_mode(env)}")
        self.agent = proxy
        self.env = env
        self.n = env.num_envs
        self.seed = seed
        self.exploit = exploit
        self.restarts = 0
        self.steps = 0
        self._reported = 0  # ``steps`` when ``env_steps`` was last sent
        self.episodes: list[list[float]] = [[] for _ in range(self.n)]
        self.finished: list[float] = [] if finished is None else finished
        self._observations = observations_converter(env.single_observation_space)
        self._actions = actions_converter(env.single_action_space)
        self._stop = threading.Event()
        self._seeded = False

    def stop(self) -> None:
        """Ask ``run`` to stop before its next step."""
        self._stop.set()

    def run(self, max_episodes: int | None = None) -> list[float]:
        """Run until every environment finished ``max_episodes`` (None: until ``stop``)."""
        try:
            self.agent.init(exploit=self.exploit)
            while not self._stop.is_set() and not self._done(max_episodes):
                try:
                    self._steps(max_episodes)
                except EpisodeRestart as exc:
                    self.restarts += 1
                    log.warning("block restarted (%s): every environment starts again", exc)
        finally:
            self.agent.disconnect()
            self.env.close()
        return self.finished

    def _done(self, max_episodes: int | None) -> bool:
        return max_episodes is not None and all(len(e) >= max_episodes for e in self.episodes)

    def _steps(self, max_episodes: int | None) -> None:
        n = self.n
        seed = None if self._seeded or self.seed is None else [self.seed + i for i in range(n)]
        self._seeded = True
        obs, _ = self.env.reset(seed=seed)
        states = self._observations(obs)
        rewards: np.ndarray | None = None
        terminal, truncated = np.zeros(n, bool), np.zeros(n, bool)
        totals, lengths = np.zeros(n), np.zeros(n, int)
        while not self._stop.is_set():
            actions = self.agent.update(rewards, states, terminal, truncated)
            if self._done(max_episodes):
                return
            resetting = terminal | truncated  # NEXT_STEP: these rows reset on this call
            obs, reward, term, trunc, _ = self.env.step(self._actions(actions))
            states = self._observations(obs)
            rewards = np.where(resetting, np.nan, np.asarray(reward, np.float32)).astype(np.float32)
            terminal = np.asarray(term, bool) & ~resetting
            truncated = np.asarray(trunc, bool) & ~resetting
            stepped = ~resetting
            self.steps += int(stepped.sum())
            totals = np.where(resetting, 0.0, totals + np.where(stepped, reward, 0.0))
            lengths = np.where(resetting, 0, lengths + stepped)
            reported = 0  # episodes reported on this step
            for i in np.flatnonzero(terminal | truncated):
                if max_episodes is None or len(self.episodes[i]) < max_episodes:
                    self.episodes[i].append(float(totals[i]))
                    self.finished.append(float(totals[i]))
                    self.agent.metrics.mean(names.EPISODE_REWARD, float(totals[i]))
                    self.agent.metrics.mean(names.EPISODE_LENGTH, float(lengths[i]))
                    reported += 1
            if reported:  # as VectorRunner: the steps since the last report, with the ends
                self.agent.metrics.scalar(names.ENV_STEPS, self.steps - self._reported)
                self.agent.metrics.scalar(names.EPISODES, reported)
                self._reported = self.steps
