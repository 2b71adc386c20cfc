"""The autoscaler with real daemons (a broker, the autoscaler and the workers it runs) under a
ramp of client sessions up and back down: ``bench.autoscale``'s ramp, small here, full in the
slow suite. Workers grow from the minimum to the maximum while sessions are refused, shrink
back to the minimum afterwards, and no session is lost or restarted."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def check(figures: dict, maximum: int) -> None:
    ramp, lost = figures["ramp"], figures["lost"]
    assert ramp["workers_min"] == 1 and ramp["workers_max"] == maximum, ramp
    assert ramp["workers_end"] == 1, ramp  # back to the minimum
    assert ramp["refused_inits"] > 0, ramp  # demand did outrun capacity on the way up
    assert math.isfinite(ramp["refusal_to_new_worker_s"]) and ramp["refusal_to_new_worker_s"] < 10
    assert lost == {**lost, "lost_blocks": 0, "rehomed_blocks": 0, "client_restarts": 0}, lost
    assert lost["moved_blocks"] >= 1, lost  # a drain moved a kept block at its episode end
    assert figures["steps_per_s"]["at_max"] > 0 and figures["steps_per_s"]["at_min"] > 0


@pytest.mark.slow  # 15-30 s: the default suite runs the CLI and restart tests below
@pytest.mark.timeout(120)
def test_workers_follow_a_ramp_of_sessions_up_and_down(import_bench, tmp_path) -> None:
    bench = import_bench("autoscale")
    ramp = bench.Ramp(
        peak=64, block=4, worker_sessions=16, maximum=4, every=0.3, hold=1.0, settle=40.0,
        cooldown=0.5, down_after=1.0,
    )  # fmt: skip
    outcome = bench.run_ramp(ramp, tmp_path)
    text = bench.report(outcome)
    print(text)  # the numbers over time, in the test's output
    print(json.dumps(outcome.figures))
    assert "workers  draining  sessions" in text
    check(outcome.figures, 4)
    peak = max(row["sessions"] for row in outcome.timeline)
    assert peak == 64 and max(row["workers"] for row in outcome.timeline) == 4


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_full_ramp_from_8_to_256_sessions_and_back() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.autoscale", "--peak", "256", "--worker-sessions", "64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    check(json.loads(done.stdout.strip().splitlines()[-1]), 4)


@pytest.mark.timeout(60)
def test_the_cli_runs_its_workers_and_stops_them_with_itself(tmp_path) -> None:
    from exchange_support import live_workers, start_daemon, wait_until, write_app

    from relaax_zmq.runtime.identity import cluster_name

    app, endpoints = write_app(tmp_path, autoscale={"min": 2, "max": 3, "interval": 0.2})
    broker = start_daemon("broker", "relaax_zmq.broker", app)
    cli = [sys.executable, "-m", "relaax_zmq.cli", "autoscale", "-c", str(app)]
    try:
        bad = subprocess.run([*cli, "--min", "3", "--max", "2"], capture_output=True, text=True)
        assert bad.returncode == 1 and "expected 0 <= min <= max" in bad.stderr, bad.stderr
        scaler = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            names = {cluster_name("worker-0"), one := cluster_name("worker-1")}
            wait_until(
                lambda: {w["name"] for w in live_workers(endpoints["admin"])} == names,
                30,
                "the minimum of 2 workers registered",
            )
            (pid,) = [w["pid"] for w in live_workers(endpoints["admin"]) if w["name"] == one]
            os.kill(pid, signal.SIGKILL)  # a worker that dies is restarted under its name
            wait_until(
                lambda: (
                    {w["pid"] for w in live_workers(endpoints["admin"]) if w["name"] == one} - {pid}
                ),
                30,
                f"{one} restarted",
            )
        finally:
            scaler.terminate()
            _, stderr = scaler.communicate(timeout=30)
        assert scaler.returncode == 0, stderr[-2000:]
        assert "autoscaler: 2..3 workers" in stderr and "autoscaler stopped" in stderr
        assert f"{one} exited unexpectedly (-9): restarting it" in stderr
        wait_until(lambda: not live_workers(endpoints["admin"]), 5, "its workers gone (BYE)")
    finally:
        broker.stop()


def test_the_workers_role_runs_the_autoscaler_instead_of_fixed_workers(tmp_path) -> None:
    from exchange_support import write_app

    from relaax_zmq.cli.programs import app_programs
    from relaax_zmq.config import load_config
    from relaax_zmq.runtime.local import app_daemons

    fixed, _ = write_app(tmp_path, workers={"count": 2})
    names = [p.name for p in app_programs(load_config(fixed), fixed, ["workers"])]
    assert names == ["worker-0", "worker-1"]
    scaled, _ = write_app(tmp_path, workers={"count": 2}, autoscale={"enabled": True})
    (program,) = app_programs(load_config(scaled), scaled, ["broker", "workers"])[1:]
    assert program.name == "autoscaler" and program.role == "workers"
    assert program.command[1:] == ("-m", "relaax_zmq.autoscale", "--config", str(scaled))
    assert "autoscaler" in [d.name for d in app_daemons(load_config(scaled))]


class FakeProcess:
    """A worker process that runs until a test sets its ``returncode``."""

    pid = 4242

    def __init__(self, *args, **kwargs) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, number: int) -> None:
        self.returncode = -number

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


def test_a_worker_that_dies_is_restarted_later_after_each_fast_exit(monkeypatch, tmp_path) -> None:
    from types import SimpleNamespace

    from relaax_zmq.autoscale import workers
    from relaax_zmq.runtime.daemon import EXIT_REFUSED

    clock = [100.0]
    monkeypatch.setattr(workers, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    fake = SimpleNamespace(Popen=FakeProcess, TimeoutExpired=subprocess.TimeoutExpired)
    monkeypatch.setattr(workers, "subprocess", fake)
    pool = workers.WorkerPool(tmp_path / "app.yaml")
    first = pool.start()

    def dies_at(t: float, code: int = 1) -> None:
        clock[0] = t
        pool.workers[0].process.returncode = code
        pool.reap()

    dies_at(101.0)  # 1 s after its start: waits 1 s, keeping its place (no other is added)
    assert pool.workers[0] is first and len(pool.active()) == 1 and pool.restarted == 1
    clock[0] = 102.0
    pool.reap()
    second = pool.workers[0]
    assert second is not first and second.failures == 1
    dies_at(103.0)  # fast again: 3 s
    clock[0] = 105.9
    pool.reap()
    assert pool.workers[0] is second
    clock[0] = 106.0
    pool.reap()
    third = pool.workers[0]
    assert third is not second and third.failures == 2
    dies_at(200.0)  # ran 94 s: restarted at once, the count of fast exits reset
    assert pool.workers[0] is not third and pool.workers[0].failures == 0
    assert pool.restarted == 3
    dies_at(201.0, EXIT_REFUSED)  # its name is taken: left down
    assert not pool.workers and pool.refused == 1
    drained = pool.start()
    drained.draining_since = 202.0
    dies_at(203.0)  # exited while draining: gone
    assert not pool.workers and pool.restarted == 3
