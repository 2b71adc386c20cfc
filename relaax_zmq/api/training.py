"""Running an app to its stops: in this thread (serial mode) or with its daemons.

``run_app`` takes an app already written to a file (``learn`` writes one; ``train_app``
takes the user's) and runs it until the mean of the last ``window`` returns reaches the
target, a number of environment steps, a time limit, the shards' ``max_global_step``, a
callback returning False or Ctrl-C, showing the progress and calling the callbacks on
the way; the environments run in this process. It returns the ``Run``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
from gymnasium.vector import VectorEnv

from relaax_zmq.api.callbacks import Callback, EvalCallback
from relaax_zmq.api.metrics import SerialMetrics
from relaax_zmq.api.policy import Policy
from relaax_zmq.api.spaces import SpaceInfo
from relaax_zmq.api.watch import Stops, Watch
from relaax_zmq.client import VectorAgentProxy
from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.envs.launch import make_vector_blocks, session_options
from relaax_zmq.envs.vector_env_runner import vector_env_runner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.errors import RelaaxError
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.progress import ProgressDisplay, mean_of_last
from relaax_zmq.runtime.watching import checkpoint_files, global_step
from relaax_zmq.serial import SerialRun, SerialRunner

#: How ``run_app`` runs an app: in this thread, with its daemons started here, or against
#: daemons that already run.
RUN_MODES = ("serial", "local", "connect")


@dataclass
class Run:
    """What a training run did: the figures, where its files are, and the trained policy."""

    algorithm: str
    env: str
    mode: str
    steps: int
    seconds: float
    returns: list[float]
    final_mean_reward: float
    best_mean_reward: float
    global_step: int
    stopped: str
    target_reached: bool
    run_dir: Path
    app_file: Path
    checkpoint_dir: Path | None
    metrics_dir: Path | None
    policy_file: Path | None
    policy: Policy | None = field(repr=False, default=None)

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def summary(self) -> str:
        """One line of figures and the run folder."""
        mean = "-" if math.isinf(self.final_mean_reward) else f"{self.final_mean_reward:.1f}"
        return (
            f"{self.algorithm} on {self.env} ({self.mode}): {self.steps:,} steps in "
            f"{self.seconds:.1f} s, {self.episodes:,} episodes, mean reward {mean}; "
            f"{self.stopped}; files in {self.run_dir}"
        )


@dataclass
class Environment:
    """Where a run's experience comes from: a name, the spaces when known, and how the
    sessions are made (a factory, a VectorEnv, or neither: the app's own runner)."""

    name: str
    observation_space: gymnasium.Space | None = None
    action_space: gymnasium.Space | None = None
    env_id: str | None = None
    factory: Callable[[], gymnasium.Env] | None = None
    vector: VectorEnv | None = None

    @classmethod
    def of_app(cls, config: AppConfig) -> Environment:
        """The app's own environment sessions (``environment.run``)."""
        env = config.environment
        return cls(str(env.name or env.run), env_id=env.name)

    def spaces(self) -> tuple[SpaceInfo | None, SpaceInfo | None]:
        """The spaces' facts a policy keeps (None where unknown)."""
        return tuple(  # type: ignore[return-value]
            None if space is None else SpaceInfo.of(space)
            for space in (self.observation_space, self.action_space)
        )


def run_app(
    config: AppConfig,
    app_path: Path,
    environment: Environment,
    stops: Stops,
    *,
    mode: str,
    folder: Path,
    policy_file: Path | None = None,
    log_dir: Path | None = None,
) -> Run:
    """Run the app at ``app_path`` (``config``) in ``mode`` (``RUN_MODES``) until ``stops``;
    the final policy saved to ``policy_file`` when given, the daemons' logs in ``log_dir``
    (``LocalStack``'s default when None), ``folder`` reported as the run's."""
    if mode not in RUN_MODES:
        raise ValueError(f"run mode {mode!r}: expected one of {', '.join(RUN_MODES)}")
    for callback in stops.callbacks:
        if isinstance(callback, EvalCallback) and callback.best_path is None:
            callback.best_path = folder / "best-policy.h5"
    plan = _Plan(config, app_path, environment, stops, folder, policy_file, log_dir)
    return _serial(plan) if mode == "serial" else _with_daemons(plan, start=mode == "local")


def train_app(
    app_path: str | Path,
    *,
    serial: bool = False,
    total_steps: int | None = None,
    target_reward: float | None = None,
    window: int = 100,
    time_limit: float | None = None,
    callbacks: Sequence[Callback] = (),
    progress: ProgressDisplay | None = None,
    progress_interval: float = 1.0,
) -> Run:
    """Train the app file ``app_path`` as it is: its daemons on this machine (their logs in
    the app's ``logs/daemons``; the shards resume from its checkpoints), or in this thread
    (``serial``); its own environment sessions in this process."""
    path = Path(app_path)
    config = load_config(path)
    stops = Stops(
        total_steps, target_reward, window, time_limit, list(callbacks), progress, progress_interval
    )
    mode = "serial" if serial else "local"
    return run_app(config, path, Environment.of_app(config), stops, mode=mode, folder=path.parent)


@dataclass
class _Plan:
    """What ``run_app`` was asked to run."""

    config: AppConfig
    app_path: Path
    environment: Environment
    stops: Stops
    folder: Path
    policy_file: Path | None
    log_dir: Path | None


def _serial(plan: _Plan) -> Run:
    config, stops = plan.config, plan.stops
    metrics = SerialMetrics(config)
    runner = SerialRunner(
        config,
        make_env=plan.environment.factory,
        vector_env=plan.environment.vector,
        metrics=metrics.episode,
        recorder=metrics,
    )
    metrics.steps_of = lambda: runner.steps
    watch = Watch(stops, config.parameter_servers.max_global_step)
    observation, action = plan.environment.spaces()

    def policy() -> Policy | None:
        if runner.parameters is None:
            return None
        params, statistics = runner.weights()
        step = runner.so_far().global_step
        return Policy(config, params, statistics, step=step, observation=observation, action=action)

    def check(run: SerialRun) -> None:
        figures = (run.steps, run.returns, run.global_step)
        if not watch.check(*figures, losses=metrics.latest, policy=policy):
            runner.envs.stop()

    try:
        run = runner.run(
            max_steps=stops.total_steps,
            target_reward=stops.target_reward,
            window=stops.window,
            time_limit=stops.time_limit,
            on_progress=check,
            progress_interval=stops.interval,
        )
        figures = (run.steps, run.returns, run.global_step)
        watch.check(*figures, losses=metrics.latest, policy=policy, final=True)
    finally:
        metrics.close()
    final = policy()
    stopped = watch.stopped or run.stopped or "the environments finished"
    outcome = _Outcome(run.steps, run.seconds, run.returns, run.global_step, stopped)
    return _finish(plan, "serial", outcome, watch, final, checkpoints=False)


def _with_daemons(plan: _Plan, *, start: bool) -> Run:
    config, stops = plan.config, plan.stops
    stack = LocalStack(plan.app_path, collector=True, log_dir=plan.log_dir) if start else None
    interrupted = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if main_thread else None
    watch = Watch(stops, config.parameter_servers.max_global_step)
    observation, action = plan.environment.spaces()

    def newest() -> Policy | None:
        """The policy of the newest complete checkpoint (None before the first)."""
        try:
            found = Policy.load(plan.app_path)
        except RelaaxError:
            return None
        assert isinstance(found, Policy)
        found.observation = observation or found.observation
        found.action = action or found.action
        return found

    try:
        if stack is not None:
            stack.start()
        try:
            runner = _clients(config, plan.environment)
            thread = threading.Thread(target=runner.run, daemon=True, name="training-clients")
            watch.start = time.monotonic()
            thread.start()
            next_report, shards = watch.start, (0, 0)  # (global step, checkpoints) last seen
            while True:
                now = time.monotonic()
                report = now >= next_report
                if report:
                    next_report = now + stops.interval
                    shards = (global_step(config), checkpoint_files(config))
                going = watch.check(
                    runner.steps,
                    runner.finished,
                    shards[0],
                    policy=newest,
                    checkpoints=shards[1],
                    report=report,
                )
                if interrupted.is_set() and going:
                    watch.stopped, going = "interrupted", False
                if not going or not thread.is_alive():
                    break
                time.sleep(0.1)
            runner.stop()
            thread.join(30)
            seconds = time.monotonic() - watch.start
            steps, returns, last_step = runner.steps, list(runner.finished), global_step(config)
        finally:
            if stack is not None:
                stack.stop()  # the shards save a final checkpoint
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    final = newest()
    watch.check(steps, returns, last_step, policy=lambda: final, final=True)
    stopped = watch.stopped or "the environments finished"
    outcome = _Outcome(steps, seconds, returns, last_step, stopped)
    mode = "local" if start else f"connected to {plan.app_path}"
    return _finish(plan, mode, outcome, watch, final, checkpoints=True)


@dataclass
class _Outcome:
    """The figures a run ended with."""

    steps: int
    seconds: float
    returns: list[float]
    global_step: int
    stopped: str


def _finish(
    plan: _Plan,
    mode: str,
    outcome: _Outcome,
    watch: Watch,
    policy: Policy | None,
    *,
    checkpoints: bool,
) -> Run:
    """The Run, with its policy saved to the plan's file; the display closed."""
    config = plan.config
    policy_file = None
    if policy is not None and plan.policy_file is not None:
        policy_file = policy.save(plan.policy_file)
    if watch.stops.display is not None:
        watch.stops.display.close(outcome.stopped)
    return Run(
        algorithm=str(config.algorithm.name or config.algorithm.path),
        env=plan.environment.name,
        mode=mode,
        steps=outcome.steps,
        seconds=outcome.seconds,
        returns=outcome.returns,
        final_mean_reward=mean_of_last(outcome.returns, watch.stops.window),
        best_mean_reward=watch.best,
        global_step=outcome.global_step,
        stopped=outcome.stopped,
        target_reached=watch.target_reached(outcome.returns),
        run_dir=plan.folder,
        app_file=plan.app_path,
        checkpoint_dir=config.parameter_servers.checkpoint.dir if checkpoints else None,
        metrics_dir=config.metrics.logdir,
        policy_file=policy_file,
        policy=policy,
    )


def _clients(config: AppConfig, source: Environment) -> Any:
    """The app's environment sessions in this process, as clients of its broker."""
    if source.factory is None and source.vector is None:
        return make_vector_blocks(config)
    options = session_options(config.environment, 0)
    if source.vector is not None:
        proxy = VectorAgentProxy.from_config(config, source.vector.num_envs)
        return vector_env_runner(proxy, source.vector, **options)
    proxy = VectorAgentProxy.from_config(config, config.environment.clients)
    return VectorRunner.make(proxy, source.factory, **options)
