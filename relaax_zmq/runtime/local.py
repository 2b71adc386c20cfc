"""An app's daemons on this machine as plain subprocesses: shards, broker, workers (and a collector).

``LocalStack`` is what benchmarks and end-to-end tests start around their own
clients: every daemon of the app, each logging to its own file, ready when every
worker has registered with the broker and (with parameter servers) holds weights
from every shard. Stopping sends SIGTERM in the order that loses nothing: workers
(they send BYE), the broker, then the shards (they save a final checkpoint) and the
collector, and SIGKILL after a timeout. (The ``relaax-zmq`` CLI runs the same
daemons under supervisord.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.identity import host_name
from relaax_zmq.runtime.registry import experience_target

#: Environment every daemon runs with: one OpenMP thread, unbuffered output.
DAEMON_ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class LocalDaemon:
    """One daemon subprocess and its log file."""

    name: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, SIGKILL after ``timeout``; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, chars: int = 4000) -> str:
        """The end of the daemon's log."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass(frozen=True)
class DaemonSpec:
    """One daemon of an app: its name (``shard-0``), role (``ps``) and module with arguments."""

    name: str
    role: str
    module: str
    args: tuple[str, ...] = ()

    def command(self, config_path: Path) -> list[str]:
        """The command line that runs it with this Python on ``config_path``."""
        return [sys.executable, "-m", self.module, "--config", str(config_path), *self.args]


def learner_daemons(config: AppConfig) -> list[DaemonSpec]:
    """The replay servers and learners of an algorithm with a central learner (none else)."""
    target = experience_target(config.algorithm)
    if target is None:
        return []
    found = []
    if target == "replay":
        found += [
            DaemonSpec(f"replay-{i}", "replay", "relaax_zmq.replay", ("--shard", str(i)))
            for i in range(config.replay.shards)
        ]
    found += [
        DaemonSpec(f"learner-{i}", "learner", "relaax_zmq.learner", ("--index", str(i)))
        for i in range(config.learner.count)
    ]
    return found


def app_daemons(config: AppConfig, *, collector: bool = True) -> list[DaemonSpec]:
    """The daemons of the app in start order: collector, shards, replay servers and
    learners (an algorithm with a central learner), broker, workers (or the
    autoscaler that runs them, when ``autoscale.enabled``) and the gateway when
    ``gateway.enabled``."""
    found = [DaemonSpec("collector", "metrics", "relaax_zmq.metrics")] if collector else []
    found += [
        DaemonSpec(f"shard-{i}", "ps", "relaax_zmq.ps", ("--shard", str(i)))
        for i in range(app_shards(config))
    ]
    found += learner_daemons(config)
    found.append(DaemonSpec("broker", "broker", "relaax_zmq.broker"))
    if config.autoscale.enabled:  # it runs this host's workers as its children
        found.append(DaemonSpec("autoscaler", "workers", "relaax_zmq.autoscale"))
    else:
        found += [
            DaemonSpec(
                f"worker-{i}",
                "workers",
                "relaax_zmq.worker",
                ("--name", f"worker-{i}", "--index", str(i)),
            )
            for i in range(config.workers.count)
        ]
    if config.gateway.enabled:
        found.append(DaemonSpec("gateway", "gateway", "relaax_zmq.gateway"))
    return found


@dataclass
class LocalStack:
    """The daemons of the app at ``config_path``, started by ``start`` (or ``with``).

    Args:
        config_path: the app YAML file.
        log_dir: where each daemon's log goes (default: ``<app folder>/logs/daemons``).
        collector: also run the metrics collector.
        ready_timeout: seconds to wait for the workers (and their weights).
    """

    config_path: Path
    log_dir: Path | None = None
    collector: bool = False
    ready_timeout: float = 60.0
    config: AppConfig = field(init=False)
    daemons: list[LocalDaemon] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.config_path = Path(self.config_path)
        self.config = load_config(self.config_path)
        if self.log_dir is None:
            self.log_dir = self.config_path.parent / "logs" / "daemons"

    @property
    def shards(self) -> int:
        """Shards the app runs (0 when its algorithm has no parameter-server side)."""
        return app_shards(self.config)

    def start(self) -> LocalStack:
        """Start every daemon and wait until the workers are ready; stops all on failure."""
        try:
            for spec in app_daemons(self.config, collector=self.collector):
                self._start(spec)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, spec: DaemonSpec) -> None:
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **DAEMON_ENV}
        with open(log, "w") as out:
            process = subprocess.Popen(
                spec.command(self.config_path), stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.daemons.append(LocalDaemon(spec.name, process, log))

    def _wait_ready(self) -> None:
        """Until every worker is registered and synced with every shard; RuntimeError else."""

        def check() -> None:
            dead = [d for d in self.daemons if d.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited at start:\n{dead[0].tail()}")

        try:
            wait_ready(
                self.config,
                timeout=self.ready_timeout,
                check=check,
                pids=lambda: process_tree(d.process.pid for d in self.daemons),
            )
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}:\n{self.logs()}") from None

    def logs(self, chars: int = 2000) -> str:
        """The end of every daemon's log."""
        return "\n".join(f"--- {d.name}\n{d.tail(chars)}" for d in self.daemons)

    def stop(self, timeout: float = 15.0) -> dict[str, int]:
        """Stop everything in a safe order (module docstring); exit codes by daemon."""
        order = ("gateway", "autoscaler", "worker", "broker", "learner", "replay", "shard")
        codes: dict[str, int] = {}
        for kind in order:
            for daemon in [d for d in self.daemons if d.name.startswith(kind)]:
                codes[daemon.name] = daemon.stop(timeout)
        for daemon in self.daemons:  # the collector last, and anything not named above
            if daemon.name not in codes and not daemon.name.startswith("collector"):
                codes[daemon.name] = daemon.stop(timeout)
        for daemon in self.daemons:
            if daemon.name not in codes:
                codes[daemon.name] = daemon.stop(timeout)
        self.daemons = []
        return codes

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def app_shards(config: AppConfig) -> int:
    """Shards the app runs (0 when its algorithm has no parameter-server side)."""
    return config.parameter_servers.shards if load_spec(config) else 0


def process_tree(pids: Iterable[int]) -> set[int]:
    """``pids`` and every descendant of theirs alive now (the workers an autoscaler runs)."""
    found: set[int] = set()
    for pid in pids:
        found.add(pid)
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            found.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return found


def ready_workers(
    config: AppConfig, shards: int | None = None, pids: Collection[int] | None = None
) -> int | None:
    """Live workers synced with every shard, by the broker; None while it does not answer.

    Only this host's workers count: those whose process is in ``pids`` when given (a twin
    host's workers under the same names do not), else those named ``NAME@<this host>``.
    """
    shards = app_shards(config) if shards is None else shards
    try:
        workers = app_broker_status(config, timeout=1.0)["workers"]
    except Exception:  # the broker is not up yet (or not reachable)
        return None
    if pids is not None:
        ours = [w for w in workers if w["pid"] in pids]
    else:
        suffix = f"@{host_name()}"
        ours = [w for w in workers if w["name"].endswith(suffix)]
    return sum(1 for w in ours if w["alive"] and _synced(w, shards))


def wait_ready(
    config: AppConfig,
    *,
    workers: int | None = None,
    timeout: float = 60.0,
    check: Callable[[], None] | None = None,
    interval: float = 0.2,
    pids: Callable[[], Collection[int]] | None = None,
) -> None:
    """Return once ``workers`` (default ``workers.count``, or ``autoscale.min`` when it is
    enabled) workers are ready (``ready_workers``).

    ``check`` is called every ``interval`` seconds and may raise to give up early (a daemon
    died); ``pids`` gives the processes that are this host's workers (and their children), so
    that only they count; ``TimeoutError`` after ``timeout`` seconds.
    """
    if workers is not None:
        wanted = workers
    else:
        wanted = config.autoscale.min if config.autoscale.enabled else config.workers.count
    shards = app_shards(config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        ready = ready_workers(config, shards, None if pids is None else pids())
        if ready is not None and ready >= wanted:
            return
        time.sleep(interval)
    raise TimeoutError(f"{wanted} workers not ready after {timeout:.0f} s")


def _synced(worker: dict, shards: int) -> bool:
    if not shards:
        return True
    return worker.get("stats", {}).get("parameters", {}).get("synced_shards") == shards
