"""``python -m bench.learning`` stopped by SIGTERM mid-run leaves no daemon behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)


def _daemons_of(parent: psutil.Process) -> list[psutil.Process]:
    return [p for p in parent.children(recursive=True) if "relaax_zmq" in " ".join(p.cmdline())]


def test_sigterm_stops_the_running_cases_daemons() -> None:
    command = [sys.executable, "-m", "bench.learning", "--cases", "bandit-reinforce"]
    bench = subprocess.Popen(
        [*command, "--seeds", "1", "--budget", "60", "--no-sb3"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemons: list[psutil.Process] = []
    try:
        parent = psutil.Process(bench.pid)
        deadline = time.monotonic() + 60
        while len(daemons) < 3 and time.monotonic() < deadline:  # shard, broker, worker
            time.sleep(0.2)
            daemons = _daemons_of(parent)
        assert len(daemons) >= 3, [d.cmdline() for d in daemons]
        bench.send_signal(signal.SIGTERM)
        _, stderr = bench.communicate(timeout=60)
        assert bench.returncode == 128 + signal.SIGTERM, stderr
        gone, alive = psutil.wait_procs(daemons, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for daemon in daemons:
            if daemon.is_running():
                daemon.kill()
