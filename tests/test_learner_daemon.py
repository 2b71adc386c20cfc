"""The learner daemon for real: an impala app's shards, learner (replaying one batch from
its ring after each fresh one), broker and worker as processes (``LocalStack``), CartPole
clients in this process. The learner is scraped over its /metrics endpoint, fed a malformed message, killed with SIGKILL mid-run and started
again: the actors keep acting, drop what they cannot ship (memory stays bounded), and the
new learner goes on from the shards' weights and global step."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import yaml
import zmq

from relaax_zmq.config import load_config
from relaax_zmq.envs.launch import make_vector_blocks
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.ports import free_port_range, on_free_ports

CONF = Path(__file__).resolve().parents[1] / "conf"


def scrape(port: int) -> dict[str, float]:
    """The learner's unlabelled samples by name (``relaax_learner_`` dropped)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = {}
    for line in text.splitlines():
        match = re.match(r"relaax_learner_(\w+)\{[^}]*\} (\S+)$", line)
        if match and "stat=" not in line and "lag=" not in line:
            found[match.group(1)] = float(match.group(2))
    return found


def algorithm_figures(port: int) -> dict[str, float]:
    """The algorithm's learner figures (``relaax_learner_algorithm{stat=...}``) by stat."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pattern = r'relaax_learner_algorithm\{[^}]*stat="(\w+)"[^}]*\} (\S+)$'
    return {
        m.group(1): float(m.group(2))
        for m in map(re.compile(pattern).match, text.splitlines())
        if m
    }


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def learner_app(folder: Path) -> tuple[Path, int]:
    app = yaml.safe_load((CONF / "cartpole-impala.yaml").read_text())
    app["environment"].update({"seed": 3, "clients": 16, "blocks": 1})
    app["algorithm"]["config"].update({"replay_ratio": 1.0, "replay_capacity": 32})
    on_free_ports(app)
    port = free_port_range(1)
    app["prometheus"] = {"learners": port}
    app["parameter_servers"]["checkpoint"] = {"dir": str(folder / "ckpt"), "every_seconds": None}
    app["metrics"]["logdir"] = str(folder / "tb")
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    return path, port


def test_the_learner_survives_a_bad_peer_and_a_kill_and_training_goes_on(tmp_path: Path) -> None:
    path, port = learner_app(tmp_path)
    config = load_config(path)
    replacement = None
    stack = LocalStack(path)
    with stack:
        runner = make_vector_blocks(config)
        clients = threading.Thread(target=runner.run, daemon=True)
        clients.start()
        try:
            first = wait_for(lambda: (f := scrape(port)).get("learn_steps_total", 0) > 20 and f,
                             30, "the learner's first steps")  # fmt: skip
            figures = algorithm_figures(port)  # one replayed batch after each fresh one
            assert 0 < figures["replayed_batches"] <= figures["pushes"] / 2, figures

            context = zmq.Context()  # a peer sending garbage: counted, nothing else
            bad = context.socket(zmq.PUSH)
            bad.connect(config.learner.endpoint)
            bad.send_multipart(
                [b'{"v": 1, "kind": "unrolls", "fields": [["obs", "<f4", [9]]]}', b"x"]
            )
            bad.send_multipart([b"\xff" * 64])
            wait_for(lambda: scrape(port).get("malformed_total") == 2, 10, "two malformed")
            bad.close(0)
            context.term()

            learner = next(d for d in stack.daemons if d.name == "learner-0")
            worker = next(d for d in stack.daemons if d.name == "worker-0")
            rss_before = psutil.Process(worker.process.pid).memory_info().rss
            learner.process.send_signal(signal.SIGKILL)
            learner.process.wait(10)
            steps_at_kill = runner.steps
            time.sleep(4)  # the learner is away: the actor keeps acting, drops what it cannot ship
            assert runner.steps > steps_at_kill + 1000, "the clients kept being served"
            assert worker.process.poll() is None
            grown = psutil.Process(worker.process.pid).memory_info().rss - rss_before
            assert grown < 64 << 20, (
                f"the worker grew by {grown >> 20} MiB while the learner was away"
            )

            replacement = subprocess.Popen(
                [sys.executable, "-m", "relaax_zmq.learner", "--config", str(path)],
                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "learner-2.log", "w"),
            )  # fmt: skip
            again = wait_for(lambda: (f := scrape(port)).get("learn_steps_total", 0) > 20 and f,
                             40, "the new learner's steps")  # fmt: skip
            assert again["version"] > first["version"]  # the shards kept the weights
            assert again["global_step"] > first["global_step"]
            assert again["malformed_total"] == 0
        finally:
            runner.stop()
            clients.join(30)
            if replacement is not None:
                replacement.send_signal(signal.SIGTERM)
                assert replacement.wait(15) == 0
        daemons = list(stack.daemons)
    assert all(d.process.poll() is not None for d in daemons), "LocalStack stopped every daemon"
