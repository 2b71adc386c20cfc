"""``SerialRunner``: an app's environments, agent and parameter updates in one process.

The agent is the configured algorithm's, built as a worker builds it; its parameter
link is ``SerialParameters`` (the shards' own update code, no sockets); the
environments are stepped by ``VectorRunner`` (the clients' code) through an
``AgentBlock``. Nothing is started and one thread does everything: a run is
deterministic for a seed, an algorithm can be debugged with a plain debugger, and it
is the bound the distributed exchange is measured against (bench.exchange).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium
import numpy as np
from gymnasium.vector import VectorEnv

from relaax_zmq.config import AppConfig
from relaax_zmq.core import AgentContext, MetricsRecorder
from relaax_zmq.envs.launch import env_factory, session_options
from relaax_zmq.envs.vector_env_runner import VectorEnvRunner, vector_env_runner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.runtime.registry import load_algorithm
from relaax_zmq.worker.worker import use_torch_threads

from .block import AgentBlock, MetricsSink
from .learner import SerialLearner
from .parameters import SerialParameters


@dataclass
class SerialRun:
    """What a serial run did: environment steps, finished episodes' returns in order,
    seconds, shard 0's global step and why it stopped."""

    steps: int = 0
    returns: list[float] = field(default_factory=list)
    seconds: float = 0.0
    global_step: int = 0
    stopped: str = ""

    def mean_last(self, count: int = 100) -> float:
        """Mean return of the last ``count`` episodes (-inf before the first)."""
        tail = self.returns[-count:]
        return sum(tail) / len(tail) if tail else -math.inf


class SerialRunner:
    """``config``'s app in this thread (module docstring).

    The environments are the app's (``environment.clients`` of them, or ``sessions``)
    unless ``make_env`` builds them or ``vector_env`` is given (its ``num_envs`` are the
    sessions); ``metrics`` receives the block's episode metrics at each episode end,
    ``recorder`` the agent's learning figures.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        sessions: int | None = None,
        make_env: Callable[[], gymnasium.Env] | None = None,
        vector_env: VectorEnv | None = None,
        metrics: MetricsSink | None = None,
        recorder: MetricsRecorder | None = None,
    ) -> None:
        self.config = config
        algorithm = load_algorithm(config.algorithm)
        use_torch_threads(config.workers.torch_threads)  # as a worker does
        spec = load_spec(config)  # as every shard and worker builds it
        self.parameters = None if spec is None else SerialParameters(config, spec)
        self.learner = (
            None
            if algorithm.learner is None or self.parameters is None
            else SerialLearner(algorithm, config, self.parameters, recorder)
        )
        workers = config.workers
        self.agent = algorithm.make_agent(
            AgentContext(
                config=config.algorithm.config,
                worker_id="serial",
                device=workers.device,
                seed=config.environment.seed,
                max_batch=workers.max_batch,
                parameters=self.parameters,
                metrics=recorder,
                experience=self.learner,
            )
        )
        n = (
            vector_env.num_envs
            if vector_env is not None
            else sessions or config.environment.clients
        )
        self.block = AgentBlock(self.agent, n, metrics=metrics, after_step=self._check)
        options = session_options(config.environment, 0)
        self.envs: VectorRunner | VectorEnvRunner
        if vector_env is not None:
            self.envs = vector_env_runner(self.block, vector_env, **options)
        else:
            make = make_env or env_factory(config)
            self.envs = VectorRunner(self.block, [make() for _ in range(n)], **options)
        self._stops = _Stops()
        self._started = time.monotonic()
        self._stopped = ""

    @property
    def steps(self) -> int:
        """Environment steps taken so far."""
        return self.envs.steps

    def run(
        self,
        *,
        max_steps: int | None = None,
        target_reward: float | None = None,
        window: int = 100,
        time_limit: float | None = None,
        on_progress: Callable[[SerialRun], None] | None = None,
        progress_interval: float = 5.0,
    ) -> SerialRun:
        """Step until ``max_steps`` environment steps, the mean of the last ``window``
        returns reaching ``target_reward``, ``time_limit`` seconds, the parameter servers'
        ``max_global_step`` or Ctrl-C; ``on_progress`` sees the run every
        ``progress_interval`` seconds. The environments are closed at the end."""
        self._started = now = time.monotonic()
        self._stops = _Stops(
            max_steps=max_steps,
            target_reward=target_reward,
            window=window,
            deadline=math.inf if time_limit is None else now + time_limit,
            on_progress=on_progress,
            interval=progress_interval,
            next_report=now + progress_interval,
        )
        self._stopped = ""
        try:
            self.envs.run()
        except KeyboardInterrupt:
            self._stopped = "interrupted"
        finally:
            self.agent.close()
            if self.learner is not None:
                self.learner.close()
        return self.so_far()

    def weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        """A copy of the whole parameter vector and shard 0's observation statistics
        (None before any); ValueError for an algorithm without parameter servers."""
        if self.parameters is None:
            raise ValueError(f"{self.config.algorithm.name} keeps no parameters on shards")
        self.parameters.poll()
        totals = self.parameters.statistics()
        return self.parameters.weights()[0].copy(), None if totals is None else totals.copy()

    def so_far(self) -> SerialRun:
        """The run as it stands."""
        link = self.parameters
        return SerialRun(
            steps=self.envs.steps,
            returns=list(self.envs.finished),
            seconds=time.monotonic() - self._started,
            global_step=0 if link is None else link.global_step,
            stopped=self._stopped,
        )

    def _check(self) -> None:
        """After every step: stop the environments when a limit is reached; report."""
        stops, finished, now = self._stops, self.envs.finished, time.monotonic()
        if stops.max_steps is not None and self.envs.steps >= stops.max_steps:
            self._stopped = f"{self.envs.steps} steps"
        elif stops.target_reward is not None and stops.window <= len(finished) != stops.judged:
            stops.judged = len(finished)  # the mean changes only when an episode ends
            mean = sum(finished[-stops.window :]) / stops.window
            if mean >= stops.target_reward:
                self._stopped = f"mean reward {mean:.1f} >= {stops.target_reward}"
        if not self._stopped and now >= stops.deadline:
            self._stopped = "time limit"
        if not self._stopped and self.parameters is not None and self.parameters.stopping:
            self._stopped = "max_global_step"
        if self._stopped:
            self.envs.stop()
        if stops.on_progress is not None and now >= stops.next_report:
            stops.next_report = now + stops.interval
            stops.on_progress(self.so_far())


@dataclass
class _Stops:
    """What ``SerialRunner.run`` stops at and reports to."""

    max_steps: int | None = None
    target_reward: float | None = None
    window: int = 100
    deadline: float = math.inf
    on_progress: Callable[[SerialRun], None] | None = None
    interval: float = 5.0
    next_report: float = math.inf
    judged: int = 0  # finished episodes when the mean was last taken
