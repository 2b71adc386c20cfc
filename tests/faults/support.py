"""Shared helpers of the fault tests: a whole app as real processes, faults injected by name.

- ``write_app``: an app file running the ``linear_pg`` test algorithm on the bandit (shards,
  workers, checkpoints every second, metrics flushed every second) on free loopback ports,
  with the product's default liveness (``heartbeat_interval`` 1 s x ``heartbeat_liveness``
  3) unless a test overrides a section.
- ``FaultStack``: ``relaax_zmq.runtime.local.LocalStack`` plus fault injection by daemon name
  (``worker-0``, ``shard-1``, ``broker``, ``collector``): ``kill`` (SIGKILL), ``pause``
  (SIGSTOP) / ``resume`` (SIGCONT), ``terminate`` (SIGTERM, measured, orphans checked) and
  ``restart`` (the same daemon again; the old log is kept as ``NAME.N.log``). ``status`` and
  ``worker_status`` read the broker's admin endpoint.
- ``terminate``: SIGTERM any process, time its exit and find the children it left running;
  ``kill_tree``: SIGKILL a process and its children; ``start_env_runner``: the app's
  environment clients (``python -m relaax_zmq.envs``).
- ``Stepper`` / ``steppers``: client threads stepping the bandit through ``AgentProxy``
  (real sockets to the broker), time-stamping every action and every ``EpisodeRestart``.
- ``log_matches`` / ``log_times`` / ``first_log_time``: the daemon log lines matching a
  pattern and their wall-clock times (the daemons log ``%(asctime)s`` to the millisecond), to
  time what a daemon noticed and when.
- ``send_gradient``: a late gradient slice on old weights, pushed to a shard as a worker would.
- ``descendants`` / ``survivors``: a process's children (psutil) and those still running.
- ``Figures``: the measured figures of a test, printed (shown with ``pytest -s``) and written
  as JSON to ``figures.json`` in the test's folder, and appended as one JSON line to the file
  ``$RELAAX_FAULT_FIGURES`` names, if set; by ``report``, or on leaving ``with Figures(...)``
  (a failing test's figures too, marked ``"failed": true``).

Every time here is wall-clock ``time.time()``, so that log stamps and the test's own stamps
compare. Nothing here asserts: tests do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import zmq

from relaax_zmq.client import AgentProxy
from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.envs.bandit import BanditEnv
from relaax_zmq.errors import EpisodeRestart
from relaax_zmq.ps import load_spec, shard_bounds, wire
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.local import DAEMON_ENV, LocalDaemon, LocalStack, app_daemons
from relaax_zmq.runtime.ports import on_free_ports
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.testing import LINEAR_PG_PATH

#: ``linear_pg`` on the 4-armed bandit (1-value observations).
ALGORITHM = {"actions": 4, "state_size": 1, "batch_size": 10, "learning_rate": 0.05}
#: The bound the issue sets on noticing a dead peer (1 s heartbeats x liveness 3, plus 0.5 s).
DETECTION_BOUND_S = 3.5
#: Seconds a SIGTERMed daemon has to exit 0.
TERMINATE_BOUND_S = 10.0


def write_app(
    folder: Path, *, workers: int = 2, shards: int = 1, **sections: dict[str, Any]
) -> Path:
    """An app file in ``folder`` (see the module docstring); ``sections`` update its sections."""
    folder.mkdir(parents=True, exist_ok=True)
    app: dict[str, Any] = {
        "version": 1,
        "log_level": "INFO",
        "environment": {"run": "bandit", "seed": 1, "clients": 2},
        "algorithm": {"path": str(LINEAR_PG_PATH), "config": dict(ALGORITHM)},
        "broker": {"min_free_memory_mib": 0},
        "workers": {"count": workers, "max_sessions": 64},
        "parameter_servers": {
            "shards": shards,
            "checkpoint": {"dir": str(folder / "checkpoints"), "every_seconds": 1.0},
        },
        "metrics": {"logdir": str(folder / "metrics"), "flush_interval": 1.0},
    }
    for name, values in sections.items():
        app[name] = {**app.get(name, {}), **values}
    on_free_ports(app)
    path = folder / "app.yaml"
    path.write_text(json.dumps(app, indent=1))  # JSON is YAML
    return path


@dataclass
class Termination:
    """What a SIGTERM did: the exit code, the seconds to exit, children still running after."""

    name: str
    code: int | None
    seconds: float
    children: int
    orphans: list[str]


@dataclass
class FaultStack(LocalStack):
    """An app's daemons (``LocalStack``) with faults injected by daemon name.

    ``collector`` defaults to True here. ``restarts`` counts restarts per daemon name;
    ``stop`` continues paused daemons first, so that SIGTERM reaches them.
    """

    collector: bool = True
    restarts: dict[str, int] = field(default_factory=dict, init=False)
    paused: set[str] = field(default_factory=set, init=False)

    def stop(self, timeout: float = 15.0) -> dict[str, int]:
        """Continue the paused daemons, then ``LocalStack.stop``."""
        for name in list(self.paused):
            self.resume(name)
        return super().stop(timeout)

    # -- daemons ---------------------------------------------------------------------------

    def daemon(self, name: str) -> LocalDaemon:
        """The running (or last) daemon called ``name`` (until ``stop``, which forgets them)."""
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise KeyError(f"no daemon {name!r}; have {[d.name for d in self.daemons]}")

    def pid(self, name: str) -> int:
        """The process id of daemon ``name``."""
        return self.daemon(name).process.pid

    def names(self, prefix: str) -> list[str]:
        """Names of the daemons whose name starts with ``prefix`` (``worker``, ``shard``)."""
        return [d.name for d in self.daemons if d.name.startswith(prefix)]

    def signal(self, name: str, signum: int) -> float:
        """Send ``signum`` to daemon ``name``; the time it was sent."""
        self.daemon(name).process.send_signal(signum)
        return time.time()

    def kill(self, name: str) -> float:
        """SIGKILL ``name`` and reap it; the time of the kill."""
        daemon = self.daemon(name)
        at = self.signal(name, signal.SIGKILL)
        daemon.process.wait(10)
        return at

    def pause(self, name: str) -> float:
        """SIGSTOP ``name``; the time it was stopped."""
        self.paused.add(name)
        return self.signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> float:
        """SIGCONT ``name``; the time it was continued."""
        self.paused.discard(name)
        return self.signal(name, signal.SIGCONT)

    def terminate(self, name: str, timeout: float = TERMINATE_BOUND_S) -> Termination:
        """SIGTERM daemon ``name`` and measure its exit (``terminate``)."""
        return terminate(name, self.daemon(name).process, timeout)

    def restart(self, name: str) -> float:
        """Start ``name`` again (after a kill or exit); the time it was started.

        The previous log is kept as ``NAME.N.log`` (N: the restart count).
        """
        old = self.daemon(name)
        if old.process.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {old.process.pid})")
        count = self.restarts.get(name, 0) + 1
        self.restarts[name] = count
        if old.log.exists():
            old.log.rename(old.log.with_name(f"{name}.{count}.log"))
        spec = next(s for s in app_daemons(self.config, collector=True) if s.name == name)
        self.daemons.remove(old)
        at = time.time()
        self._start(spec)
        return at

    def log_paths(self, name: str) -> list[Path]:
        """Every log of daemon ``name``, oldest first (the restarts' ones, then the current)."""
        assert self.log_dir is not None
        older = [self.log_dir / f"{name}.{i}.log" for i in range(1, self.restarts.get(name, 0) + 1)]
        return [*older, self.log_dir / f"{name}.log"]

    # -- the broker's view -----------------------------------------------------------------

    def status(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The broker's admin status, or None when it does not answer in ``timeout`` s."""
        try:
            return app_broker_status(self.config, timeout=timeout)
        except Exception:  # down, restarting, or not bound yet
            return None

    def worker_status(self, *, alive: bool = True) -> dict[str, dict[str, Any]]:
        """The broker's workers by name on their host ({} when the broker does not answer).

        ``alive``: only those heard from within the liveness timeout; False: every worker
        still registered (a silent one stays until the broker's next liveness check drops it).
        """
        found = self.status()
        if found is None:
            return {}
        return {w["name"].partition("@")[0]: w for w in found["workers"] if w["alive"] or not alive}

    def synced_workers(self) -> dict[str, dict[str, Any]]:
        """Live workers whose weights come from every shard (their ``parameters`` stats)."""
        return {
            name: w["stats"]["parameters"]
            for name, w in self.worker_status().items()
            if w.get("stats", {}).get("parameters", {}).get("synced_shards") == self.shards
        }

    def global_step(self) -> int:
        """The highest global step a synced live worker has heard from shard 0 (0: none)."""
        return max((p["global_step"] for p in self.synced_workers().values()), default=0)


def terminate(
    name: str, process: subprocess.Popen, timeout: float = TERMINATE_BOUND_S
) -> Termination:
    """SIGTERM ``process``: its exit code (None: still running after ``timeout`` s, then
    SIGKILLed), the seconds it took, and its children (psutil) still running 1 s after."""
    children = descendants(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - started
    if code is None:
        process.kill()
        process.wait()
    left = survivors(children, grace=1.0)
    for child in left:  # a test must leave nothing behind, even when it fails
        child.kill()
    return Termination(name, code, seconds, len(children), [_describe(p) for p in left])


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and every child it has (cleanup after a failed test)."""
    for child in descendants(process.pid):
        with contextlib.suppress(psutil.Error):
            child.kill()
    if process.poll() is None:
        process.kill()
    process.wait()


def start_env_runner(config_path: Path, log: Path, *args: str) -> subprocess.Popen:
    """``python -m relaax_zmq.envs --config APP ARGS`` (the app's environment clients; one
    child process per session unless vectorized), its output in ``log``."""
    env = {**os.environ, **DAEMON_ENV}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "relaax_zmq.envs", "--config", str(config_path), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


# -- clients ---------------------------------------------------------------------------------


class Stepper(threading.Thread):
    """One client session stepping the bandit through the broker until ``stop``.

    Records the wall-clock time of every action (``action_times``) and every
    ``EpisodeRestart`` (``restarts``); an unexpected exception ends it (``error``).
    ``pause`` seconds are slept between steps (the machine is shared).
    """

    def __init__(self, config_path: Path, index: int, *, pause: float = 0.005, **proxy: Any):
        super().__init__(daemon=True, name=f"stepper-{index}")
        self.proxy = AgentProxy.from_config(load_config(config_path), **proxy)
        self.index = index
        self.pause = pause
        self.stopped = threading.Event()
        self.action_times: list[float] = []
        self.restarts: list[float] = []
        self.error: BaseException | None = None

    @property
    def actions(self) -> int:
        return len(self.action_times)

    def first_action_after(self, at: float) -> float | None:
        """The time of the first action received after ``at`` (None: none yet)."""
        for t in self.action_times[-100_000:]:
            if t > at:
                return t
        return None

    def restarted_after(self, at: float) -> bool:
        return any(t > at for t in self.restarts)

    def run(self) -> None:
        env = BanditEnv(episode_length=50)
        try:
            self.proxy.init()
            obs, _ = env.reset(seed=self.index)
            reward: float | None = None
            while not self.stopped.is_set():
                try:
                    action = self.proxy.update(reward=reward, state=obs)
                except EpisodeRestart:
                    self.restarts.append(time.time())
                    obs, _ = env.reset()
                    reward = None
                    continue
                self.action_times.append(time.time())
                obs, reward, _, truncated, _ = env.step(int(np.asarray(action)))
                if truncated:
                    try:
                        self.proxy.update(reward=reward, state=obs, truncated=True)
                    except EpisodeRestart:
                        self.restarts.append(time.time())
                    obs, _ = env.reset()
                    reward = None
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.proxy.disconnect()


@contextmanager
def steppers(config_path: Path, count: int, **options: Any) -> Iterator[list[Stepper]]:
    """``count`` started ``Stepper`` threads, stopped and joined afterwards."""
    clients = [Stepper(config_path, i, **options) for i in range(count)]
    for client in clients:
        client.start()
    try:
        yield clients
    finally:
        for client in clients:
            client.stopped.set()
        for client in clients:
            client.join(30)


def step_rate(clients: list[Stepper], start: float, end: float) -> float:
    """Actions per second over every client between ``start`` and ``end``."""
    count = sum(1 for c in clients for t in c.action_times if start < t <= end)
    return count / max(end - start, 1e-9)


# -- waiting and logs ------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy; its value. ``TimeoutError`` naming ``what`` else."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def wait_worker_dropped(stack: FaultStack, worker: str, since: float) -> float:
    """Seconds from ``since`` (``time.time()`` of the fault) until the broker no longer
    lists ``worker``."""
    gone = wait_for(
        lambda: worker not in stack.worker_status(alive=False) and time.time(),
        10,
        f"the broker to drop {worker}",
        poll=0.02,
    )
    return gone - since


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_matches(
    paths: Path | list[Path], pattern: str, after: float = 0.0
) -> list[tuple[float, re.Match[str]]]:
    """(wall-clock time, match) of each log line matching ``pattern`` logged after ``after``."""
    found = []
    regex = re.compile(pattern)
    for path in [paths] if isinstance(paths, Path) else paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stamp = _STAMP.match(line)
            match = regex.search(line) if stamp is not None else None
            if stamp is None or match is None:
                continue
            at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if at > after:
                found.append((at, match))
    return found


def log_times(paths: Path | list[Path], pattern: str, after: float = 0.0) -> list[float]:
    """Wall-clock times of the log lines matching ``pattern`` (a regex) logged after ``after``."""
    return [at for at, _ in log_matches(paths, pattern, after)]


def first_log_time(paths: Path | list[Path], pattern: str, after: float = 0.0) -> float | None:
    """The first time of ``log_times``, or None."""
    times = log_times(paths, pattern, after)
    return min(times) if times else None


# -- parameter servers -----------------------------------------------------------------------


def send_gradient(config: AppConfig, shard: int, worker: str, base_version: int) -> None:
    """Push one zero gradient slice to ``shard`` as worker ``worker`` would, computed on
    ``base_version`` (covering no steps): a late gradient, as the wire carries it."""
    ps = config.parameter_servers
    spec = load_spec(config)
    assert spec is not None, "the app's algorithm has no parameter-server side"
    bounds = shard_bounds(spec.param_count, ps.shards)[shard]
    values = np.zeros(bounds.count, np.float32)
    message = wire.Gradient(shard, worker, base_version, 0, 0, bounds.offset, values)
    sock = open_socket(zmq.Context.instance(), socket_map(config)[f"worker.ps[{shard}].gradients"])
    try:
        sock.send_multipart(wire.encode(message))
    finally:
        sock.close(linger=2000)


# -- processes -------------------------------------------------------------------------------


def descendants(pid: int) -> list[psutil.Process]:
    """Every child process of ``pid``, recursively ([] when ``pid`` is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def survivors(processes: list[psutil.Process], grace: float = 0.0) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies do not count) after ``grace`` seconds."""
    _, alive = psutil.wait_procs(processes, timeout=grace) if grace else ([], processes)
    left = []
    for process in alive:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process)
        except psutil.NoSuchProcess:
            continue
    return left


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())}"
    except psutil.Error:
        return str(process.pid)


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """The figures one test measured (seconds unless the name says otherwise)."""

    test: str
    folder: Path
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> Any:
        """Record ``value`` (floats rounded to the millisecond) under ``name``; ``value``."""
        self.values[name] = _rounded(value)
        return value

    def append(self, name: str, value: Any) -> Any:
        """Append ``value`` to the list ``name``; ``value``."""
        self.values.setdefault(name, []).append(_rounded(value))
        return value

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Report, also what a failing test measured before it failed (``"failed": true``)."""
        if kind is not None:
            self.values["failed"] = True
        self.report()

    def report(self) -> None:
        """Print the figures and write them (see the module docstring)."""
        line = json.dumps({"test": self.test, **self.values}, sort_keys=True)
        print(f"\nFAULT FIGURES {line}")
        (self.folder / "figures.json").write_text(line + "\n")
        extra = os.environ.get("RELAAX_FAULT_FIGURES")
        if extra:
            with open(extra, "a") as out:
                out.write(line + "\n")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
