"""``relaax-zmq run`` of an app with a central learner, as a user runs it: the learner is a
supervised program of its own role, started after the shards, stopped before them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from test_cli_support import cli, free_ports

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # ~30 s: the slow suite

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def app(tmp_path):
    """conf/cartpole-impala.yaml on free ports, its files in ``tmp_path``; stopped afterwards."""
    data = yaml.safe_load((CONF / "cartpole-impala.yaml").read_text())
    free_ports(data)
    data["environment"].update({"clients": 8, "blocks": 1})
    data["parameter_servers"]["checkpoint"] = {"dir": str(tmp_path / "ckpt")}
    data["metrics"]["logdir"] = str(tmp_path / "tb")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        yield path
    finally:
        cli("stop", "-c", path, timeout=120)


def test_run_servers_supervises_the_learner_and_training_goes_through_it(app: Path) -> None:
    started = cli("run", "servers", "--detach", "-c", app)
    assert started.returncode == 0, started.stderr + started.stdout
    found = json.loads(cli("status", "--json", "-c", app).stdout)
    states = {d["name"]: d["state"] for d in found["daemons"]}
    assert states == {
        n: "RUNNING" for n in ("collector", "shard-0", "learner-0", "broker", "worker-0")
    }
    envs = cli("run", "envs", "--detach", "-c", app)
    assert envs.returncode == 0, envs.stderr + envs.stdout
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = cli("logs", "learner-0", "-c", app).stdout
        steps = [int(n) for n in re.findall(r"version -?\d+, (\d+) steps", logs)]
        if steps and max(steps) > 0:
            break
        time.sleep(2)
    assert "listening at" in logs and steps and max(steps) > 0, logs[-2000:]
    stopped = cli("stop", "-c", app)
    assert stopped.returncode == 0, stopped.stderr
    assert list((app.parent / "ckpt").glob("ckpt-*.h5")), "the shards saved the learner's work"
