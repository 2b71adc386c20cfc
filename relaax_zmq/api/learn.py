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

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium
import yaml
from gymnasium.vector import VectorEnv

from relaax_zmq.api.callbacks import Callback
from relaax_zmq.api.evaluate import EnvSpec
from relaax_zmq.api.policy import POLICY_FILE
from relaax_zmq.api.training import Environment, Run, run_app
from relaax_zmq.api.watch import Stops
from relaax_zmq.config import load_config, parse_config
from relaax_zmq.config.fitting import (
    algorithm_preset,
    fit_spaces,
    fitted_app,
    register_optional_envs,
)
from relaax_zmq.config.loader import apply_overrides
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.ports import on_free_ports
from relaax_zmq.runtime.progress import ProgressDisplay
from relaax_zmq.runtime.registry import check_algorithm_config

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
    if mode is not None and str(mode) not in MODES:  # a running app to connect to
        app_path = _app_file(Path(str(mode)))
        config, folder, chosen, policy_file = (
            load_config(app_path),
            app_path.parent,
            "connect",
            None,
        )
    else:
        mapping = _app_mapping(algo, source, config, seed=seed, n_envs=n_envs, workers=workers)
        parsed = parse_config(mapping, "learn")
        check_algorithm_config(parsed)  # before any folder is made
        chosen = (
            str(mode) if mode is not None else "local" if parsed.workers.count > 1 else "serial"
        )
        folder = _run_folder(run_dir, source.name, algo)
        if chosen == "local":
            on_free_ports(mapping)
        app_path = _write_app(folder, mapping, algo, source)
        config, policy_file = load_config(app_path), folder / POLICY_FILE
    every = [callbacks] if callable(callbacks) else list(callbacks)
    stops = Stops(
        total_steps, target_reward, window, time_limit, every, progress, progress_interval
    )
    log_dir = folder / "logs" if chosen == "local" else None
    return run_app(
        config,
        app_path,
        source,
        stops,
        mode=chosen,
        folder=folder,
        policy_file=policy_file,
        log_dir=log_dir,
    )


def _environment(env: EnvSpec | VectorEnv) -> Environment:
    """What ``learn`` was given as its environment."""
    if isinstance(env, VectorEnv):
        name = _spec_id(env) or type(env).__name__
        return Environment(
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
            return Environment(env, made.observation_space, made.action_space, env_id=env)
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
            return Environment(
                name, sample.observation_space, sample.action_space, spec_id, factory=env
            )
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
    source: Environment,
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


def _write_app(folder: Path, mapping: Mapping[str, Any], algo: str, source: Environment) -> Path:
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
