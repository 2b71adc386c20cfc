"""The worker processes an autoscaler runs on its host: started, drained, stopped, restarted.

Worker ``i`` runs as ``python -m relaax_zmq.worker --config APP --name worker-<i> --index
<i>``, a child of the autoscaler, so its cluster name is ``worker-<i>@<host>``
(``runtime.identity``) and its Prometheus port ``prometheus.workers + i``. New workers take
the lowest free number.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from relaax_zmq.runtime.daemon import EXIT_REFUSED
from relaax_zmq.runtime.identity import cluster_name
from relaax_zmq.runtime.local import DAEMON_ENV

log = logging.getLogger(__name__)

#: Seconds a stopped worker may take to send BYE and exit before it is killed.
STOP_GRACE = 15.0
#: A worker that dies sooner than this after its start failed fast: its next restart waits
#: 1, 3, 7, 15 then 30 s (a worker that cannot start does not spin).
FAST_EXIT = 10.0
MAX_RESTART_DELAY = 30.0


@dataclass
class WorkerProcess:
    """One worker child: its number, cluster name, process, and when its drain began;
    after an unexpected exit, when it restarts and how many fast exits came before."""

    index: int
    name: str
    process: subprocess.Popen
    draining_since: float | None = None
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    restart_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.draining_since is not None


class WorkerPool:
    """The autoscaler's worker children for the app at ``config_path``."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.workers: dict[int, WorkerProcess] = {}
        self.started = self.stopped = self.restarted = self.refused = 0

    def active(self) -> list[WorkerProcess]:
        """Workers running (or waiting to restart) and not being removed."""
        return [w for w in self.workers.values() if not w.draining]

    def draining(self) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.draining]

    def start(self, index: int | None = None, failures: int = 0) -> WorkerProcess:
        """Start worker ``index`` (default: the lowest free number) after ``failures`` fast
        exits."""
        if index is None:
            index = next(i for i in range(len(self.workers) + 1) if i not in self.workers)
        command = [sys.executable, "-m", "relaax_zmq.worker", "--config", str(self.config_path)]
        command += ["--name", f"worker-{index}", "--index", str(index)]
        process = subprocess.Popen(command, env={**os.environ, **DAEMON_ENV})
        name = cluster_name(f"worker-{index}")
        worker = WorkerProcess(index, name, process, started=time.monotonic(), failures=failures)
        self.workers[index] = worker
        self.started += 1
        log.info("started %s (pid %d)", worker.name, process.pid)
        return worker

    def stop(self, worker: WorkerProcess) -> int:
        """SIGTERM (the worker sends BYE), SIGKILL after ``STOP_GRACE``; its exit status."""
        self.workers.pop(worker.index, None)
        process = worker.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killed", worker.name, STOP_GRACE)
                process.kill()
                process.wait()
        self.stopped += 1
        log.info("stopped %s (exit %s)", worker.name, process.returncode)
        return int(process.returncode)

    def reap(self) -> None:
        """Workers that exited by themselves: restarted (later after fast exits), unless
        drained (then gone) or refused by the broker (their name is taken: a configuration
        error, logged)."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            code = worker.process.poll()
            if code is None:
                continue
            if worker.draining or code == EXIT_REFUSED:
                self._forget(worker, code)
                continue
            if worker.restart_at is None:
                self.restarted += 1
                fast = now - worker.started < FAST_EXIT
                worker.failures = worker.failures + 1 if fast else 0
                delay = min(MAX_RESTART_DELAY, 2.0**worker.failures - 1)
                worker.restart_at = now + delay
                later = f" in {delay:.0f} s" if delay else ""
                log.warning(
                    "%s exited unexpectedly (%d): restarting it%s", worker.name, code, later
                )
            if now >= worker.restart_at:
                self.start(worker.index, worker.failures)

    def _forget(self, worker: WorkerProcess, code: int) -> None:
        del self.workers[worker.index]
        if worker.draining:
            log.info("%s exited (%d) while draining", worker.name, code)
            return
        self.refused += 1
        log.error("%s was refused by the broker (its name is taken): not restarted", worker.name)

    def close(self) -> None:
        """Stop every worker (in parallel: SIGTERM to all, then wait)."""
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for worker in list(self.workers.values()):
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.workers.clear()
