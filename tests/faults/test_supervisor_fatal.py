"""A daemon that keeps crashing ends FATAL under a real supervisord, and the CLI says so.

supervisord's ``startsecs``/``startretries`` catch a daemon that dies at start; one that
crashes after ``startsecs`` would be restarted forever but for the restart budget
(``relaax_zmq.cli.crashguard``). Crashes here are real: a daemon that cannot start
(a collector whose event folder would be inside a file), and a daemon SIGKILLed each time
supervisord reports it RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_cli_support import CLI, cli, new_bandit_app

from relaax_zmq.cli.common import CliError
from relaax_zmq.cli.crashguard import REFUSED, clear_history
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import ProcessInfo, Supervisor

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def app(tmp_path: Path):
    """A bandit app on free ports; whatever runs for it is stopped afterwards."""
    path = new_bandit_app(tmp_path / "app")
    try:
        yield path
    finally:
        cli("stop", "-c", path, timeout=120)


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def crash_until_fatal(
    supervisor: Supervisor, name: str, timeout: float, alive: Callable[[], bool] = lambda: True
) -> tuple[list[str], float]:
    """SIGKILL ``name`` each time supervisord reports it RUNNING (up for ``startsecs``) until
    it is FATAL; the command lines killed and the seconds from the first kill to FATAL."""
    killed: list[str] = []
    first = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info: ProcessInfo = supervisor.programs()[name]
        except CliError:  # supervisord is gone: ``alive`` tells whether that was expected
            break
        if info.state == "FATAL":
            return killed, time.monotonic() - first
        if info.state == "RUNNING" and info.pid:
            killed.append(cmdline(info.pid))
            os.kill(info.pid, signal.SIGKILL)
            first = first or time.monotonic()
            while supervisor.programs()[name].pid == info.pid:
                time.sleep(0.05)
        time.sleep(0.1)
    if not alive():  # whoever watched saw it FATAL first and stopped everything
        return killed, time.monotonic() - first
    raise AssertionError(f"{name} not FATAL after {len(killed)} crashes in {timeout:.0f} s")


def test_the_guard_execs_the_daemon_within_its_budget_and_refuses_beyond(tmp_path: Path) -> None:
    history = tmp_path / "starts" / "demo.starts"
    guard = [sys.executable, "-m", "relaax_zmq.cli.crashguard", "--name", "demo"]
    guard += ["--history", str(history), "--limit", "1", "--window", "60", "--"]
    daemon = [sys.executable, "-c", "import os; print(os.getpid())"]
    for _ in range(2):  # the start, and one restart
        process = subprocess.Popen([*guard, *daemon], stdout=subprocess.PIPE, text=True)
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0 and int(out) == process.pid  # exec'd: the same process
    refused = subprocess.run([*guard, *daemon], capture_output=True, text=True, timeout=60)
    assert refused.returncode == REFUSED and refused.stdout == ""
    assert "crashguard: demo started 2x" in refused.stderr
    assert "relaax-zmq restart demo" in refused.stderr
    assert len(history.read_text().split()) == 2  # a refused start is not recorded
    clear_history(history)
    assert subprocess.run([*guard, *daemon], capture_output=True, timeout=60).returncode == 0


def test_crash_looping_daemons_end_fatal_and_status_exits_1(app: Path) -> None:
    budget = ("--crash-limit", "1", "--crash-window", "300")
    up = cli("run", "broker", "--detach", *budget, "-c", app)
    assert up.returncode == 0, up.stdout + up.stderr
    supervisor = Supervisor(RunFolder.of(app))

    # 1. crashes at start: a valid config whose event folder would be inside a file
    data = yaml.safe_load(app.read_text())
    data["metrics"]["logdir"] = str(app / "metrics")
    app.write_text(yaml.safe_dump(data))
    started = cli("run", "metrics", "--detach", "--ready-timeout", "90", *budget, "-c", app)
    assert started.returncode == 1, started.stdout + started.stderr
    assert "collector failed to start" in started.stderr and "Not a directory" in started.stderr

    # 2. crashes after startsecs: restarted once (the budget), then refused and FATAL
    killed, to_fatal = crash_until_fatal(supervisor, "broker", timeout=120)
    assert len(killed) == 2, killed  # no third crash was needed
    assert all("relaax_zmq.broker" in line for line in killed)  # the guard exec'd the daemon
    print(f"broker: {len(killed)} crashes, FATAL {to_fatal:.1f} s after the first")

    status = cli("status", "-c", app)
    assert status.returncode == 1, status.stdout
    lines = status.stdout.splitlines()
    for name, why in (
        ("broker:broker", "crashguard: broker started 2x"),
        ("metrics:collector", "crashguard: collector started 2x"),  # failed, retried, refused
    ):
        at = next(i for i, line in enumerate(lines) if line.split()[:2] == [name, "FATAL"])
        assert lines[at + 1].strip().startswith("last log line:"), status.stdout
        assert why in lines[at + 1], status.stdout
    assert "limit: 1 restarts in 300 s" in status.stdout
    assert supervisor.programs()["broker"].state == "FATAL"  # still: nothing restarts it


@pytest.mark.parametrize(
    ("role", "name"),
    [("metrics", "collector"), pytest.param("all", "worker-0", marks=pytest.mark.slow)],
)
def test_a_foreground_run_reports_a_crash_looping_daemon_and_exits_1(
    app: Path, role: str, name: str
) -> None:
    process = subprocess.Popen(
        [*CLI, "run", role, "--crash-limit", "0", "-c", str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # until every daemon is up
            lines.append(line)
            if line.startswith("up:"):
                break
        assert process.poll() is None, "".join(lines)
        supervisor = Supervisor(RunFolder.of(app))
        killed, _ = crash_until_fatal(supervisor, name, 120, lambda: process.poll() is None)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(lines) + out
    assert process.returncode == 1, text
    assert len(killed) == 1, text  # --crash-limit 0: no restart after a crash
    assert f"{name} keeps crashing; supervisord gave up (FATAL)" in text
    assert f"crashguard: {name} started 1x" in text
    assert f"{name} failed; stopping the daemons" in text
    assert cli("status", "-c", app).returncode == 1  # everything stopped
