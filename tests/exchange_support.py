"""Real broker and worker processes for the end-to-end tests: start, watch, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaax_zmq.runtime.admin_client import broker_status, live_workers
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing import LINEAR_POLICY_PATH


def local_name(name: str) -> str:
    """A worker's name on its host: ``w0`` for the cluster name ``w0@vm`` the broker shows."""
    return name.partition("@")[0]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_app(folder: Path, **sections: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """An app config on free loopback ports; ``sections`` update the defaults per section."""
    endpoints = {
        name: f"tcp://127.0.0.1:{free_port()}" for name in ("frontend", "backend", "admin")
    }
    config: dict[str, Any] = {
        "version": 1,
        "log_level": "INFO",
        "environment": {"run": "gym", "name": "CartPole-v1"},
        "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
        "broker": {
            **endpoints,
            "heartbeat_interval": 0.2,
            "heartbeat_liveness": 3,
            "min_free_memory_mib": 0,
            "client_request_timeout": 5.0,
            "retry_backoff_initial": 0.05,
            "retry_backoff_max": 0.5,
        },
        "workers": {"max_sessions": 64},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    path = folder / "app.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path, endpoints


@dataclass
class Daemon:
    """One daemon subprocess; its output goes to a log file shown when a test fails."""

    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_daemon(name: str, module: str, config: Path, *args: str) -> Daemon:
    log = config.parent / f"{name}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(config), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return Daemon(name, proc, log)


status = broker_status  # the tests' short name


@dataclass
class Exchange:
    """A running broker and its workers."""

    config: Path
    endpoints: dict[str, str]
    broker: Daemon
    workers: dict[str, Daemon] = field(default_factory=dict)

    @property
    def frontend(self) -> str:
        return self.endpoints["frontend"]

    @property
    def admin(self) -> str:
        return self.endpoints["admin"]

    def logs(self) -> str:
        daemons = [self.broker, *self.workers.values()]
        return "\n".join(f"--- {d.name}\n{d.output()[-4000:]}" for d in daemons)


@contextmanager
def running_exchange(
    folder: Path, worker_count: int = 2, **sections: dict[str, Any]
) -> Iterator[Exchange]:
    """Broker + ``worker_count`` worker processes, registered; everything stopped afterwards.

    A failure inside prints the daemons' logs, which pytest shows with it."""
    config, endpoints = write_app(folder, **sections)
    ex = Exchange(config, endpoints, start_daemon("broker", "relaax_zmq.broker", config))
    try:
        for i in range(worker_count):
            name = f"w{i}"
            ex.workers[name] = start_daemon(name, "relaax_zmq.worker", config, "--name", name)
        wait_until(lambda: len(live_workers(ex.admin)) == worker_count, 30, "workers to register")
        yield ex
    except BaseException:
        print(ex.logs())  # pytest shows it with the failure
        raise
    finally:
        for daemon in ex.workers.values():
            daemon.stop()
        ex.broker.stop()
