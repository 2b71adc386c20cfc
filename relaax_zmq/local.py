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

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from relaax_zmq.admin_client import broker_status
from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.ps.plugin import load_spec


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
        return self.config.parameter_servers.shards if load_spec(self.config) else 0

    def start(self) -> LocalStack:
        """Start every daemon and wait until the workers are ready; stops all on failure."""
        try:
            if self.collector:
                self._start("collector", "relaax_zmq.metrics")
            for i in range(self.shards):
                self._start(f"shard-{i}", "relaax_zmq.ps", "--shard", str(i))
            self._start("broker", "relaax_zmq.broker")
            for i in range(self.config.workers.count):
                self._start(f"worker-{i}", "relaax_zmq.worker", "--name", f"worker-{i}")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, name: str, module: str, *args: str) -> None:
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", module, "--config", str(self.config_path), *args]
        with open(log, "w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.daemons.append(LocalDaemon(name, process, log))

    def _wait_ready(self) -> None:
        """Until every worker is registered and synced with every shard; RuntimeError else."""
        admin, workers, shards = (
            str(self.config.broker.admin),
            self.config.workers.count,
            self.shards,
        )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            dead = [d for d in self.daemons if d.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited at start:\n{dead[0].tail()}")
            try:
                live = [w for w in broker_status(admin, timeout=1.0)["workers"] if w["alive"]]
            except Exception:  # the broker is not up yet
                live = []
            synced = [w for w in live if _synced(w, shards)]
            if len(synced) >= workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"workers not ready after {self.ready_timeout:.0f} s:\n{self.logs()}")

    def logs(self, chars: int = 2000) -> str:
        """The end of every daemon's log."""
        return "\n".join(f"--- {d.name}\n{d.tail(chars)}" for d in self.daemons)

    def stop(self, timeout: float = 15.0) -> dict[str, int]:
        """Stop everything in a safe order (module docstring); exit codes by daemon."""
        order = ("worker", "broker", "shard", "collector")
        codes: dict[str, int] = {}
        for kind in order:
            for daemon in [d for d in self.daemons if d.name.startswith(kind)]:
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


def _synced(worker: dict, shards: int) -> bool:
    if not shards:
        return True
    return worker.get("stats", {}).get("parameters", {}).get("synced_shards") == shards
