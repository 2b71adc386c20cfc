"""relaax-zmq run/status/logs/restart/stop/play with real daemons under a real supervisord."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_cli_support import CLI, cli, new_bandit_app

from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.config import load_config

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def app(tmp_path):
    """A bandit app on free ports; whatever runs for it is stopped afterwards."""
    path = new_bandit_app(tmp_path / "app")
    try:
        yield path
    finally:
        cli("stop", "-c", path, timeout=120)


def test_detached_run_status_logs_restart_and_stop(app: Path) -> None:
    started = cli("run", "servers", "--detach", "-c", app)
    assert started.returncode == 0, started.stderr + started.stdout
    assert "up:" in started.stdout
    status = cli("status", "--json", "-c", app)
    assert status.returncode == 0, status.stdout
    found = json.loads(status.stdout)
    states = {d["name"]: d["state"] for d in found["daemons"]}
    assert states == {n: "RUNNING" for n in ("collector", "shard-0", "broker", "worker-0")}
    assert found["broker"]["reachable"] and found["broker"]["workers_alive"] == 1
    assert "[program:shard-0]" in (RunFolder.of(app).supervisord_conf).read_text()
    fresh = cli("run", "envs", "--fresh", "-c", app)
    assert fresh.returncode == 2 and "daemons are running; stop them first" in fresh.stderr
    logs = cli("logs", "broker", "-c", app)
    assert logs.returncode == 0 and "relaax_zmq.broker" in logs.stdout
    pid = next(d["pid"] for d in found["daemons"] if d["name"] == "worker-0")
    restarted = cli("restart", "worker-0", "-c", app)
    assert restarted.returncode == 0 and "worker-0: RUNNING" in restarted.stdout
    again = json.loads(cli("status", "--json", "-c", app).stdout)
    assert next(d["pid"] for d in again["daemons"] if d["name"] == "worker-0") != pid
    unknown = cli("restart", "worker-9", "-c", app)
    assert unknown.returncode == 1 and "no daemon or role 'worker-9'" in unknown.stderr
    stopped = cli("stop", "-c", app)
    assert stopped.returncode == 0, stopped.stderr
    assert list(load_config(app).parameter_servers.checkpoint.dir.glob("ckpt-*.h5"))
    down = cli("status", "-c", app)
    assert down.returncode == 1 and "supervisord: not running" in down.stdout


def test_a_daemon_that_crashes_at_start_is_reported(app: Path) -> None:
    data = yaml.safe_load(app.read_text())
    # a valid config whose collector cannot start: its event folder would be inside a file
    data["metrics"]["logdir"] = str(app / "metrics")
    app.write_text(yaml.safe_dump(data))
    result = cli("run", "metrics", "--detach", "--ready-timeout", "90", "-c", app)
    assert result.returncode == 1, result.stdout
    assert "collector failed to start" in result.stderr and "Not a directory" in result.stderr
    assert (
        "the end of its log" in result.stderr and "Traceback" not in result.stderr.split("log")[0]
    )
    assert not RunFolder.of(app).socket.exists() or cli("status", "-c", app).returncode == 1


@pytest.mark.slow
def test_foreground_run_stops_cleanly_on_ctrl_c(app: Path) -> None:
    process = subprocess.Popen(
        [*CLI, "run", "all", "-c", str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "global step" in line and "steps 0 " not in line:
                break
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    text = "".join(lines) + out
    assert process.returncode == 0, text
    assert "interrupted; stopping the daemons" in text
    assert "checkpoints:" in text and "daemon logs:" in text
    assert list(load_config(app).parameter_servers.checkpoint.dir.glob("ckpt-*.h5"))
    assert cli("status", "-c", app).returncode == 1  # nothing left running


@pytest.mark.slow
def test_foreground_run_reaches_the_target_and_play_scores_the_policy(app: Path) -> None:
    result = cli(
        "run",
        "all",
        "--target-reward",
        "95",
        "--window",
        "10",
        "--time-limit",
        "180",
        "-c",
        app,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "target reward 95 reached" in result.stdout
    png = RunFolder.of(app).root / "learning-curve.png"
    assert f"learning curve: {png}" in result.stdout and png.exists()
    played = cli("play", "-n", "2", "--episodes", "3", "--json", "-c", app, timeout=200)
    assert played.returncode == 0, played.stderr
    score = json.loads(played.stdout.strip().splitlines()[-1])
    assert score["episodes"] == 6 and score["mean_reward"] >= 90  # the best arm, greedily


def test_a_new_app_runs_in_the_foreground_learns_and_stops_by_itself(app: Path) -> None:
    """``relaax-zmq new demo && cd demo && relaax-zmq run all``, as a newcomer tries it."""
    done = subprocess.run(
        [*CLI, "run", "all"], cwd=app.parent, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "max_global_step 300,000 reached (--fresh trains from scratch)" in done.stdout, (
        done.stdout[-3000:]
    )
    rewards = [float(r) for r in re.findall(r"mean reward ([0-9.]+)", done.stdout)]
    assert rewards and rewards[-1] >= 90.0, done.stdout[-3000:]  # the best arm: +1 a pull
    assert (app.parent / "logs" / "run" / "app" / "learning-curve.png").stat().st_size > 0
    assert list(load_config(app).parameter_servers.checkpoint.dir.glob("ckpt-*.h5"))


def test_a_second_run_continues_the_first_and_fresh_starts_over(app: Path) -> None:
    def run(*extra: str) -> tuple[str, list[int]]:
        done = cli("run", "all", "--time-limit", "4", *extra, "-c", app, timeout=200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        if "json" in extra:  # stdout holds the JSON lines alone, every message goes to stderr
            records = [json.loads(line) for line in done.stdout.splitlines()]
            assert records[-1]["event"] == "end", records[-1]
            assert "up:" in done.stderr and "checkpoints:" in done.stderr, done.stderr[-3000:]
            return done.stderr, [r["global_step"] for r in records]
        found = re.findall(r"global step ([0-9,]+)", done.stdout)
        assert found, done.stdout[-3000:]
        return done.stdout, [int(step.replace(",", "")) for step in found]

    _, first = run()
    _, resumed = run("--progress", "json")
    assert resumed[0] >= first[-1] > 0, (first, resumed)  # from the first run's checkpoint
    out, fresh = run("--fresh")
    assert "earlier run set aside" in out, out[-3000:]
    assert fresh[0] < resumed[-1], (resumed, fresh)
    checkpoints = load_config(app).parameter_servers.checkpoint.dir
    (previous,) = checkpoints.parent.glob("checkpoints.previous-*")
    assert list(previous.glob("ckpt-*.h5")), "the earlier run's checkpoints are kept"
    assert list(checkpoints.glob("ckpt-*.h5")), "the fresh run saved its own"
    (metrics,) = load_config(app).metrics.logdir.parent.glob("metrics.previous-*")
    assert any(metrics.iterdir())
