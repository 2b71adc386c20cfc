"""``python -m relaax_zmq.envs --config app.yaml``: run the app's environment clients.

``environment.clients`` sessions, each seeded ``seed + i``, each running
``max_episodes`` episodes (forever when null):

- ``vectorized: true``: one ``VectorRunner`` block of all sessions; with ``blocks: B``
  the sessions are split into B blocks, one child process each (``--block J`` runs block
  J alone; ``--threads`` runs the blocks as threads of this process instead);
- otherwise one child process per session (``--index I`` runs session I alone;
  ``--threads`` runs the sessions as threads of this process instead).

``run`` picks the runner: ``gym`` (``GymRunner`` on ``environment.name``),
``bandit`` (``BanditRunner``), or ``path/to/module.py:ClassName`` naming either a
``TrainingBase`` subclass, built as ``Class(proxy, **env_kwargs, seed=...,
max_episode_steps=..., episode_timeout=..., exploit=...)``, or a ``gymnasium.Env``
subclass, built as ``Class(**env_kwargs)`` and driven by ``GymRunner``.
Episode rewards are logged as they come and summed up on stdout at the end;
the exit status is 0 when every session finished.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium

from relaax_zmq.client import AgentProxy, TrainingBase, VectorAgentProxy
from relaax_zmq.config import AppConfig, EnvironmentConfig, load_config
from relaax_zmq.config.overrides import parse_overrides
from relaax_zmq.errors import ConfigError, RelaaxError
from relaax_zmq.runtime.imports import import_path

from .bandit import BanditEnv, BanditRunner
from .gym_runner import GymRunner
from .threads import run_in_threads
from .vector_runner import VectorBlocks, VectorRunner
from .wrappers import env_maker

log = logging.getLogger("relaax_zmq.envs")

Runner = TrainingBase | VectorRunner | VectorBlocks
#: Episode rewards printed per session in the final report (the mean covers them all).
SHOWN_REWARDS = 20


def load_class(spec: str) -> type:
    """The class a ``module.py:ClassName`` or ``dotted.module:ClassName`` runner spec names."""
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))  # the runner may import its neighbours
        try:
            module = import_path(path, "relaax_zmq_runner")
        except ImportError as exc:
            raise ConfigError("environment.run", str(exc)) from None
    else:
        module = importlib.import_module(module_name)
    found = getattr(module, attr, None)
    if not isinstance(found, type):
        raise ConfigError("environment.run", f"{spec!r}: no class {attr!r} in {module_name}")
    return found


def session_options(env: EnvironmentConfig, index: int) -> dict[str, Any]:
    """``TrainingBase`` options of session ``index``."""
    return {
        "seed": None if env.seed is None else env.seed + index,
        "max_episode_steps": env.max_episode_steps,
        "episode_timeout": env.episode_timeout,
        "exploit": env.exploit,
    }


def make_runner(config: AppConfig, index: int, **proxy_options: Any) -> TrainingBase:
    """The runner of session ``index`` (not vectorized)."""
    env = config.environment
    proxy = AgentProxy.from_config(config, **proxy_options)
    options = session_options(env, index)
    if env.run == "gym":
        return GymRunner(proxy, env_factory(config)(), **options)
    if env.run == "bandit":
        return BanditRunner(proxy, **env.env_kwargs, **options)
    cls = load_class(env.run)
    if issubclass(cls, TrainingBase):
        return cls(proxy, **env.env_kwargs, **options)
    if issubclass(cls, gymnasium.Env):
        return GymRunner(proxy, cls(**env.env_kwargs), **options)
    raise ConfigError("environment.run", f"{env.run!r}: expected a TrainingBase or gymnasium.Env")


def env_factory(config: AppConfig) -> Callable[[], gymnasium.Env]:
    """How a vectorized client builds each of its environments."""
    env = config.environment
    kwargs = dict(env.env_kwargs)
    if env.run == "gym":
        return env_maker(str(env.name), kwargs, env.wrappers)
    if env.run == "bandit":
        return lambda: BanditEnv(**kwargs)
    cls = load_class(env.run)
    if issubclass(cls, gymnasium.Env):
        return lambda: cls(**kwargs)
    raise ConfigError(
        "environment.vectorized",
        f"{env.run!r} drives one session; a vectorized client needs a gymnasium.Env class",
    )


def make_vector_runner(
    config: AppConfig,
    sessions: range | None = None,
    finished: list[float] | None = None,
    **proxy_options: Any,
) -> VectorRunner:
    """One batched runner for ``sessions`` (all ``environment.clients`` by default),
    appending its episode rewards to ``finished`` when given."""
    env = config.environment
    sessions = range(env.clients) if sessions is None else sessions
    proxy = VectorAgentProxy.from_config(config, len(sessions), **proxy_options)
    options = session_options(env, sessions.start)
    return VectorRunner.make(proxy, env_factory(config), finished=finished, **options)


def make_vector_blocks(config: AppConfig, **proxy_options: Any) -> VectorBlocks:
    """Every block of ``environment.block_sessions()`` in this process, as one runner."""
    finished: list[float] = []
    return VectorBlocks(
        [
            make_vector_runner(config, sessions, finished, **proxy_options)
            for sessions in config.environment.block_sessions()
        ]
    )


def run_sessions(runners: Sequence[Runner], max_episodes: int | None) -> list[list[float] | None]:
    """Run each runner in its own thread (one: in this one); None for a session that failed."""
    results: list[list[float] | None] = [None] * len(runners)

    def target(i: int) -> None:
        try:
            results[i] = runners[i].run(max_episodes)
        except RelaaxError as exc:  # AgentError, ProtocolError
            log.error("session %d failed: %s", i, exc)

    if len(runners) == 1:
        target(0)
        return results
    run_in_threads([functools.partial(target, i) for i in range(len(runners))], "session")
    return results


def report(labels: Sequence[str], results: Sequence[list[float] | None]) -> bool:
    """Print each runner's episode rewards after its label (``session 3``, ``block 1
    (sessions 8..15)``); True when every runner finished."""
    for label, rewards in zip(labels, results, strict=True):
        if rewards is None:
            print(f"{label}: failed", flush=True)
            continue
        mean = sum(rewards) / len(rewards) if rewards else float("nan")
        shown = " ".join(f"{r:g}" for r in rewards[:SHOWN_REWARDS])
        more = " ..." if len(rewards) > SHOWN_REWARDS else ""
        line = f"{label}: {len(rewards)} episodes, mean reward {mean:g}: {shown}{more}"
        print(line, flush=True)
    return all(r is not None for r in results)


def spawn_children(argv: Sequence[str], option: str, count: int) -> int:
    """One child process per session or block (``option`` 0 .. count - 1); forwards
    SIGTERM/SIGINT; 0 when all exit 0."""
    base = [sys.executable, "-m", "relaax_zmq.envs", *argv]
    children = [subprocess.Popen([*base, option, str(i)]) for i in range(count)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if all(code == 0 for code in codes) else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m relaax_zmq.envs", description="Run the app's environment clients."
    )
    parser.add_argument("--config", required=True, type=Path, help="app YAML file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (YAML value), e.g. environment.clients=2",
    )
    parser.add_argument("--index", type=int, default=None, help="run only session INDEX")
    parser.add_argument("--block", type=int, default=None, help="run only vectorized block BLOCK")
    parser.add_argument("--threads", action="store_true", help="sessions as threads, not processes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m relaax_zmq.envs``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        config = load_config(args.config, parse_overrides(args.set))
    except ConfigError as exc:
        print(f"relaax_zmq.envs: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s envs[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    env = config.environment
    blocks = env.block_sessions()
    if args.index is not None and not 0 <= args.index < env.clients:
        print(f"relaax_zmq.envs: --index must be in 0..{env.clients - 1}", file=sys.stderr)
        return 2
    if args.block is not None and not (env.vectorized and 0 <= args.block < len(blocks)):
        print(f"relaax_zmq.envs: --block must be in 0..{len(blocks) - 1}", file=sys.stderr)
        return 2
    if not env.vectorized and args.index is None and env.clients > 1 and not args.threads:
        return spawn_children(argv, "--index", env.clients)
    if env.vectorized and args.block is None and len(blocks) > 1 and not args.threads:
        return spawn_children(argv, "--block", len(blocks))
    try:
        if env.vectorized:
            chosen = list(enumerate(blocks))
            if args.block is not None:
                chosen = [chosen[args.block]]
            runners: list[Runner] = [make_vector_runner(config, b) for _, b in chosen]
            labels = [f"block {j} (sessions {b.start}..{b.stop - 1})" for j, b in chosen]
        else:
            indices = [args.index] if args.index is not None else list(range(env.clients))
            runners = [make_runner(config, i) for i in indices]
            labels = [f"session {i}" for i in indices]
    except (ConfigError, TypeError, ValueError, gymnasium.error.Error) as exc:
        print(f"relaax_zmq.envs: {exc}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: object) -> None:
        for runner in runners:
            runner.stop()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        results = run_sessions(runners, env.max_episodes)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if report(labels, results) else 1
