"""``learn(env, algo)``: train from Python and get the run, its files and its policy back.

An app is made for the environment (``relaax_zmq.config.fitting``: the bundled preset
for the pair, else the algorithm's defaults fitted to the environment's spaces), the
``config`` overrides applied, and written as ``app.yaml`` into the run folder, which
also gets the checkpoints, the TensorBoard files, the daemons' logs and the final
policy (``policy.h5``). Three modes:

- ``"serial"``: everything in this thread (``relaax_zmq.serial``), nothing started;
- ``"local"``: the app's real daemons on this machine (``LocalStack``: shards, broker,
  workers, metrics collector), the environments in this process as its clients;
- an app file or folder of a running app (``relaax-zmq run servers``, or a cluster):
  the environments connect to its broker; the policy is its newest checkpoint.

The default is local when the app runs more than one worker, serial otherwise. The
environments run in this process in every mode, so an env factory or a gymnasium
VectorEnv works as well as an id.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium
import yaml
from gymnasium.vector import VectorEnv

from relaax_zmq.api.callbacks import Callback, EvalCallback, Progress
from relaax_zmq.api.evaluate import EnvSpec
from relaax_zmq.api.metrics import SerialMetrics
from relaax_zmq.api.policy import POLICY_FILE, Policy
from relaax_zmq.api.spaces import SpaceInfo
from relaax_zmq.client import VectorAgentProxy
from relaax_zmq.config import AppConfig, load_config, parse_config
from relaax_zmq.config.fitting import (
    algorithm_preset,
    fit_spaces,
    fitted_app,
    register_optional_envs,
)
from relaax_zmq.config.loader import apply_overrides
from relaax_zmq.envs.launch import make_vector_blocks, session_options
from relaax_zmq.envs.vector_env_runner import vector_env_runner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.progress import ProgressDisplay, ProgressState, mean_of_last
from relaax_zmq.runtime.registry import load_algorithm
from relaax_zmq.runtime.train import checkpoint_files, global_step
from relaax_zmq.serial import SerialRunner
from relaax_zmq.testing.ports import on_free_ports

#: The modes ``learn`` runs in by name (else an app file or folder to connect to).
MODES = ("serial", "local")
#: The top-level sections of an app file; other ``config`` keys are the algorithm's.
SECTIONS = (
    "version",
    "environment",
    "workers",
    "parameter_servers",
    "algorithm",
    "broker",
    "metrics",
    "protocol",
    "security",
    "gateway",
)


@dataclass
class Run:
    """What ``learn`` did: the figures, where its files are, and the trained policy."""

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
class _Env:
    """The environment ``learn`` was given: a name, its spaces and how to make sessions."""

    name: str
    observation_space: gymnasium.Space
    action_space: gymnasium.Space
    env_id: str | None = None
    factory: Callable[[], gymnasium.Env] | None = None
    vector: VectorEnv | None = None


def learn(
    env: EnvSpec | VectorEnv,
    algo: str = "ppo",
    *,
    total_steps: int | None = None,
    target_reward: float | None = None,
    window: int = 100,
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    mode: str | Path | None = None,
    n_envs: int | None = None,
    workers: int | None = None,
    time_limit: float | None = None,
    run_dir: str | Path | None = None,
    callbacks: Sequence[Callback] | Callback = (),
    progress: ProgressDisplay | None = None,
    progress_interval: float = 1.0,
) -> Run:
    """Train ``algo`` on ``env`` until ``total_steps`` environment steps, the mean of the
    last ``window`` returns reaching ``target_reward``, ``time_limit`` seconds, a callback
    returning False or Ctrl-C (module docstring for ``mode``).

    ``env``: a gymnasium id, a factory of gymnasium environments or a VectorEnv (its
    sessions). ``config``: overrides, as dotted keys (``"workers.count"``) or nested
    mappings; keys that are not sections of an app file are the algorithm's
    (``{"rollout_length": 32}``). ``n_envs``: environment sessions; ``workers``: worker
    daemons (local mode). ``progress``: a display (``relaax_zmq.runtime.progress``) to
    show the run on. Raises ConfigError for a bad environment, algorithm or override.
    """
    source = _environment(env)
    connect = mode is not None and str(mode) not in MODES
    if connect:
        app_path = _app_file(Path(str(mode)))
        config = load_config(app_path)
        folder = app_path.parent
    else:
        mapping = _app_mapping(algo, source, config, seed=seed, n_envs=n_envs, workers=workers)
        parsed = parse_config(mapping, "learn")
        _check_hyperparameters(parsed)
        chosen = (
            str(mode) if mode is not None else ("local" if parsed.workers.count > 1 else "serial")
        )
        folder = _run_folder(run_dir, source.name, algo)
        if chosen == "local":
            on_free_ports(mapping)
        app_path = _write_app(folder, mapping, algo, source)
        config = load_config(app_path)
    every: list[Callback] = [callbacks] if callable(callbacks) else list(callbacks)
    for callback in every:
        if isinstance(callback, EvalCallback) and callback.best_path is None:
            callback.best_path = folder / "best-policy.h5"
    limits = _Limits(
        total_steps, target_reward, window, time_limit, every, progress, progress_interval
    )
    label = "connect" if connect else chosen
    spaces = (SpaceInfo.of(source.observation_space), SpaceInfo.of(source.action_space))
    if label == "serial":
        return _serial(config, source, limits, folder, app_path, spaces)
    return _with_daemons(config, source, limits, folder, app_path, spaces, start=not connect)


@dataclass
class _Limits:
    total_steps: int | None
    target_reward: float | None
    window: int
    time_limit: float | None
    callbacks: list[Callback]
    display: ProgressDisplay | None
    interval: float


class _Watch:
    """The stop rules, the best mean, the display and the callbacks of one run."""

    def __init__(self, limits: _Limits, max_global_step: int | None) -> None:
        self.limits = limits
        self.max_global_step = max_global_step
        self.best = -math.inf
        self.stopped = ""
        self.start = time.monotonic()

    def check(
        self,
        steps: int,
        returns: Sequence[float],
        global_step: int,
        *,
        losses: Mapping[str, float] | None = None,
        policy: Callable[[], Policy | None] = lambda: None,
        checkpoints: int = 0,
        final: bool = False,
        report: bool = True,
    ) -> bool:
        """Update with the run's figures; True while it goes on."""
        limits, elapsed = self.limits, time.monotonic() - self.start
        mean = mean_of_last(returns, limits.window)
        self.best = max(self.best, mean)
        if not self.stopped:
            self.stopped = self._reason(steps, mean, global_step, elapsed)
        if report or final or self.stopped:
            if limits.display is not None:
                limits.display.update(
                    ProgressState(
                        elapsed,
                        steps,
                        len(returns),
                        mean,
                        global_step,
                        checkpoints,
                        limits.total_steps,
                    )
                )
            progress = Progress(
                steps,
                len(returns),
                elapsed,
                mean,
                self.best,
                global_step,
                dict(losses or {}),
                final,
                policy,
            )
            for callback in limits.callbacks:
                if callback(progress) is False and not self.stopped:
                    self.stopped = (
                        f"stopped by {getattr(callback, '__name__', type(callback).__name__)}"
                    )
        return not self.stopped

    def _reason(self, steps: int, mean: float, global_step: int, elapsed: float) -> str:
        limits = self.limits
        if limits.target_reward is not None and mean >= limits.target_reward:
            return f"target reward {limits.target_reward:g} reached"
        if limits.total_steps is not None and steps >= limits.total_steps:
            return f"{limits.total_steps:,} steps done"
        if limits.time_limit is not None and elapsed >= limits.time_limit:
            return f"time limit of {limits.time_limit:g} s reached"
        if self.max_global_step is not None and global_step >= self.max_global_step:
            return f"max_global_step {self.max_global_step:,} reached"
        return ""

    def target_reached(self, returns: Sequence[float]) -> bool:
        target = self.limits.target_reward
        return target is not None and mean_of_last(returns, self.limits.window) >= target


def _serial(
    config: AppConfig,
    source: _Env,
    limits: _Limits,
    folder: Path,
    app_path: Path,
    spaces: tuple[SpaceInfo, SpaceInfo],
) -> Run:
    metrics = SerialMetrics(config)
    runner = SerialRunner(
        config,
        make_env=source.factory,
        vector_env=source.vector,
        metrics=metrics.episode,
        recorder=metrics,
    )
    watch = _Watch(limits, config.parameter_servers.max_global_step)

    def policy() -> Policy | None:
        if runner.parameters is None:
            return None
        params, statistics = runner.weights()
        step = runner.so_far().global_step
        return Policy(
            config, params, statistics, step=step, observation=spaces[0], action=spaces[1]
        )

    def check(run: Any) -> None:
        if not watch.check(
            run.steps, run.returns, run.global_step, losses=metrics.latest, policy=policy
        ):
            runner.envs.stop()

    metrics.steps_of = lambda: runner.steps
    try:
        run = runner.run(
            max_steps=limits.total_steps,
            target_reward=limits.target_reward,
            window=limits.window,
            time_limit=limits.time_limit,
            on_progress=check,
            progress_interval=limits.interval,
        )
        watch.check(
            run.steps,
            run.returns,
            run.global_step,
            losses=metrics.latest,
            policy=policy,
            final=True,
        )
    finally:
        metrics.close()
    final = policy()
    policy_file = final.save(folder / POLICY_FILE) if final is not None else None
    stopped = watch.stopped or run.stopped or "the environments finished"
    return _finish(
        config,
        source,
        "serial",
        run.steps,
        run.seconds,
        run.returns,
        run.global_step,
        stopped,
        watch,
        folder,
        app_path,
        final,
        policy_file,
        checkpoints=False,
    )


def _with_daemons(
    config: AppConfig,
    source: _Env,
    limits: _Limits,
    folder: Path,
    app_path: Path,
    spaces: tuple[SpaceInfo, SpaceInfo],
    *,
    start: bool,
) -> Run:
    stack = LocalStack(app_path, collector=True, log_dir=folder / "logs") if start else None
    interrupted = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if main_thread else None
    watch = _Watch(limits, config.parameter_servers.max_global_step)

    def newest() -> Policy | None:
        try:
            found = Policy.load(app_path)
        except Exception:
            return None
        assert isinstance(found, Policy)
        found.observation, found.action = spaces
        return found

    try:
        if stack is not None:
            stack.start()
        try:
            runner = _clients(config, source)
            thread = threading.Thread(target=runner.run, daemon=True, name="learn-clients")
            watch.start = time.monotonic()
            thread.start()
            next_report = watch.start
            while True:
                now = time.monotonic()
                report = now >= next_report
                if report:
                    next_report = now + limits.interval
                step = global_step(config) if report else 0
                going = watch.check(
                    runner.steps,
                    runner.finished,
                    step,
                    policy=newest,
                    checkpoints=checkpoint_files(config) if report else 0,
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
    policy_file = final.save(folder / POLICY_FILE) if final is not None and start else None
    mode = "local" if start else f"connected to {app_path}"
    return _finish(
        config,
        source,
        mode,
        steps,
        seconds,
        returns,
        last_step,
        stopped,
        watch,
        folder,
        app_path,
        final,
        policy_file,
        checkpoints=True,
    )


def _finish(
    config: AppConfig,
    source: _Env,
    mode: str,
    steps: int,
    seconds: float,
    returns: list[float],
    last_step: int,
    stopped: str,
    watch: _Watch,
    folder: Path,
    app_path: Path,
    policy: Policy | None,
    policy_file: Path | None,
    *,
    checkpoints: bool,
) -> Run:
    if watch.limits.display is not None:
        watch.limits.display.close(stopped)
    return Run(
        algorithm=str(config.algorithm.name or config.algorithm.path),
        env=source.name,
        mode=mode,
        steps=steps,
        seconds=seconds,
        returns=returns,
        final_mean_reward=mean_of_last(returns, watch.limits.window),
        best_mean_reward=watch.best,
        global_step=last_step,
        stopped=stopped,
        target_reached=watch.target_reached(returns),
        run_dir=folder,
        app_file=app_path,
        checkpoint_dir=config.parameter_servers.checkpoint.dir if checkpoints else None,
        metrics_dir=config.metrics.logdir,
        policy_file=policy_file,
        policy=policy,
    )


def _check_hyperparameters(config: AppConfig) -> None:
    """The algorithm's own check of its ``config`` (unknown keys, bad values), before any
    folder is made; ConfigError with its text."""
    try:
        load_algorithm(config.algorithm).parse(config.algorithm.config)
    except ValueError as exc:  # "<algorithm>: <key path>: <what>"
        text = str(exc).removeprefix(f"{config.algorithm.name}: ")
        path, _, what = text.partition(": ")
        if not path.startswith("algorithm.config") or not what:
            path, what = "algorithm.config", text
        raise ConfigError(path, what) from None


def _clients(config: AppConfig, source: _Env) -> Any:
    """The app's environment sessions in this process, as clients of its broker."""
    if source.factory is None and source.vector is None:
        return make_vector_blocks(config)
    options = session_options(config.environment, 0)
    if source.vector is not None:
        proxy = VectorAgentProxy.from_config(config, source.vector.num_envs)
        return vector_env_runner(proxy, source.vector, **options)
    proxy = VectorAgentProxy.from_config(config, config.environment.clients)
    return VectorRunner.make(proxy, source.factory, **options)


def _environment(env: EnvSpec | VectorEnv) -> _Env:
    """What ``learn`` was given as its environment."""
    if isinstance(env, VectorEnv):
        name = _spec_id(env) or type(env).__name__
        return _Env(
            name, env.single_observation_space, env.single_action_space, _spec_id(env), vector=env
        )
    if isinstance(env, str):
        register_optional_envs()
        try:
            made = gymnasium.make(env)
        except gymnasium.error.Error as exc:
            raise ConfigError(
                "environment.name", f"cannot make the gymnasium environment {env!r}: {exc}"
            ) from None
        try:
            return _Env(env, made.observation_space, made.action_space, env_id=env)
        finally:
            made.close()
    if callable(env):
        sample = env()
        if not isinstance(sample, gymnasium.Env):
            raise ConfigError(
                "environment",
                f"expected the factory to return a gymnasium.Env, got {type(sample).__name__}",
            )
        try:
            spec_id = _spec_id(sample)
            name = spec_id or getattr(env, "__name__", type(sample).__name__)
            return _Env(name, sample.observation_space, sample.action_space, spec_id, factory=env)
        finally:
            sample.close()
    raise ConfigError(
        "environment",
        f"expected a gymnasium id, an env factory or a VectorEnv, got {type(env).__name__}",
    )


def _spec_id(env: Any) -> str | None:
    spec = getattr(env, "spec", None)
    return getattr(spec, "id", None)


def _app_mapping(
    algo: str,
    source: _Env,
    overrides: Mapping[str, Any] | None,
    *,
    seed: int | None,
    n_envs: int | None,
    workers: int | None,
) -> dict[str, Any]:
    """The app for ``algo`` on the environment, with the overrides applied."""
    if source.factory is None and source.vector is None:
        mapping = fitted_app(algo, source.name, (source.observation_space, source.action_space))
    else:  # hyperparameters of a preset; the spaces and sessions are the given environment's
        base = algorithm_preset(algo, source.env_id)
        inputs, outputs = fit_spaces(source.observation_space, source.action_space)
        hyper = dict((base.get("algorithm") or {}).get("config") or {})
        hyper.update({"input": inputs, "output": outputs})
        sessions = source.vector.num_envs if source.vector is not None else 8
        mapping = {
            "version": 1,
            "environment": {
                "run": "gym",
                "name": source.env_id or source.name,
                "clients": sessions,
                "vectorized": True,
            },
            **{k: v for k, v in base.items() if k in ("workers", "parameter_servers")},
            "algorithm": {"name": algo, "config": hyper},
        }
    mapping = _clean(mapping)
    dotted: dict[str, Any] = {}
    if seed is not None:
        dotted["environment.seed"] = seed
    if n_envs is not None:
        dotted["environment.clients"] = n_envs
    if workers is not None:
        dotted["workers.count"] = workers
    dotted.update(_dotted(overrides or {}))
    return apply_overrides(mapping, dotted)


def _clean(mapping: dict[str, Any]) -> dict[str, Any]:
    """A preset's mapping without the paths and endpoints of the folder it came from."""
    mapping = yaml.safe_load(yaml.safe_dump(mapping))  # a deep copy of plain data
    mapping.pop("broker", None)
    ps = mapping.setdefault("parameter_servers", {})
    ps.pop("endpoints", None)
    ps["checkpoint"] = {**(ps.get("checkpoint") or {}), "dir": "checkpoints"}
    mapping["metrics"] = {**(mapping.get("metrics") or {}), "logdir": "metrics"}
    mapping["metrics"].pop("endpoint", None)
    return mapping


def _dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys of ``overrides``: a section's mapping is spread over its keys (the
    algorithm's ``config`` too); a key that names no app section is the algorithm's."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        key = str(key)
        full = key if key.split(".")[0] in SECTIONS else f"algorithm.config.{key}"
        if full in ("algorithm.config", *SECTIONS) and isinstance(value, Mapping):
            for inner, item in _dotted(value).items():
                out[f"{full}.{inner.removeprefix('algorithm.config.')}"] = item
        else:
            out[full] = value
    return out


def _run_folder(run_dir: str | Path | None, env_name: str, algo: str) -> Path:
    if run_dir is not None:
        folder = Path(run_dir).expanduser()
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(
                "run_dir", f"expected a new or empty folder, got {str(folder)!r} with files in it"
            )
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = env_name.replace("/", "-")
        folder = Path("runs") / f"{safe}-{algo}-{stamp}"
        n = 1
        while folder.exists():
            n += 1
            folder = Path("runs") / f"{safe}-{algo}-{stamp}-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _write_app(folder: Path, mapping: Mapping[str, Any], algo: str, source: _Env) -> Path:
    made = (
        "made by relaax_zmq.learn"
        if source.factory is None and source.vector is None
        else (
            "made by relaax_zmq.learn; the environment came from Python (a factory or a VectorEnv)"
        )
    )
    header = f"# relaax-zmq app: {algo} on {source.name} ({made}).\n# The config this run used.\n"
    path = folder / "app.yaml"
    path.write_text(header + yaml.safe_dump(dict(mapping), sort_keys=False))
    return path


def _app_file(where: Path) -> Path:
    path = where / "app.yaml" if where.is_dir() else where
    if not path.is_file():
        raise ConfigError(
            "mode", f"expected serial, local or a running app's file or folder, got {str(where)!r}"
        )
    return path
