"""Training across hosts: broker (+ collector), shards, two worker hosts and two client hosts
in six network namespaces joined by a bridge, each host started with ``relaax-zmq run ROLE`` as
on a cluster, each with its own host name (a UTS namespace: ``unshare --uts``).

The namespaces, veth pairs and the bridge are made by the test and removed afterwards;
their addresses exist only inside them. It needs root, ``ip netns`` and ``unshare``:
otherwise it skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PREFIX = f"rzt{os.getpid() % 10000}"
SUBNET = f"10.213.{os.getpid() % 250}"
HOSTS = {"broker": 1, "ps": 2, "wk1": 3, "wk2": 4, "cl1": 5, "cl2": 6}
ROLES = {
    "broker": ["broker", "metrics"],
    "ps": ["ps"],
    "wk1": ["workers"],
    "wk2": ["workers"],
    "cl1": ["envs"],
    "cl2": ["envs"],
}
CLI = [sys.executable, "-m", "relaax_zmq.cli"]
#: seconds a stopped worker host's sessions may take to move to the other host
MOVE_WITHIN = 5.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(500)]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


def ns(host: str) -> str:
    return f"{PREFIX}-{host}"


def in_ns(
    host: str, *args: str, timeout: float = 180, name: str | None = None
) -> subprocess.CompletedProcess:
    """A command inside ``host``'s network namespace, in a UTS namespace whose host name is
    ``name`` (default: ``host``), as on a machine of that name."""
    command = ["ip", "netns", "exec", ns(host), "unshare", "--uts", "sh", "-c"]
    command += ['hostname "$0" && exec "$@"', name or host, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def why_not() -> str | None:
    """The reason network namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = sh("ip", "netns", "add", f"{PREFIX}-probe", check=False)
    if probe.returncode != 0:
        return f"ip netns add failed: {probe.stderr.strip()}"
    sh("ip", "netns", "del", f"{PREFIX}-probe", check=False)
    return None


@pytest.fixture
def network() -> Iterator[dict[str, str]]:
    """The hosts on one bridge: host -> its address."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    switch = f"{PREFIX}-sw"
    made = [switch]
    try:
        sh("ip", "netns", "add", switch)
        sh("ip", "netns", "exec", switch, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", switch, "ip", "link", "set", "br0", "up")
        addresses = {}
        for host, number in HOSTS.items():
            name = ns(host)
            sh("ip", "netns", "add", name)
            made.append(name)
            sh(
                "ip",
                "link",
                "add",
                f"{PREFIX}h{number}",
                "type",
                "veth",
                "peer",
                "name",
                f"{PREFIX}s{number}",
            )
            sh("ip", "link", "set", f"{PREFIX}h{number}", "netns", name)
            sh("ip", "link", "set", f"{PREFIX}s{number}", "netns", switch)
            sh(
                "ip",
                "netns",
                "exec",
                switch,
                "ip",
                "link",
                "set",
                f"{PREFIX}s{number}",
                "master",
                "br0",
            )
            sh("ip", "netns", "exec", switch, "ip", "link", "set", f"{PREFIX}s{number}", "up")
            address = f"{SUBNET}.{number}"
            run = ("ip", "netns", "exec", name, "ip")
            sh(*run, "addr", "add", f"{address}/24", "dev", f"{PREFIX}h{number}")
            sh(*run, "link", "set", f"{PREFIX}h{number}", "up")
            sh(*run, "link", "set", "lo", "up")
            addresses[host] = address
        ping = in_ns("cl1", "ping", "-c", "1", "-W", "2", addresses["broker"], timeout=10)
        if ping.returncode != 0 and shutil.which("ping") is not None:
            pytest.fail(f"the hosts cannot reach each other: {ping.stdout} {ping.stderr}")
        yield addresses
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


def host_app(addresses: dict[str, str]) -> dict:
    """The bandit app, every endpoint on the address of the host that binds it: 2 workers per
    worker host, 8 sessions in 2 blocks per client host, training that outlasts the test."""
    app = yaml.safe_load((ROOT / "conf" / "bandit-reinforce.yaml").read_text())
    broker = addresses["broker"]
    app["broker"] = {
        k: f"tcp://{broker}:{7000 + i}" for i, k in enumerate(("frontend", "backend", "admin"))
    }
    app["metrics"] = {"endpoint": f"tcp://{broker}:7003", "flush_interval": 1.0}
    app["parameter_servers"] = {"endpoints": {"host": addresses["ps"]}, "max_global_step": 10**9}
    app["workers"] = {"count": 2}
    app["environment"].update(clients=8, blocks=2)
    return app


def cluster_status(files: dict[str, Path]) -> dict[str, Any]:
    """The broker's figures, as ``relaax-zmq status --json`` on client host 1 reports them."""
    status = in_ns("cl1", *CLI, "status", "--json", "-c", str(files["cl1"]))
    return json.loads(status.stdout)["broker"]


def by_host(broker: dict[str, Any]) -> dict[str, int]:
    """Sessions per worker host (the part of each worker's name after ``@``)."""
    found: dict[str, int] = {}
    for worker in broker["workers"]:
        host = worker["name"].partition("@")[2]
        found[host] = found.get(host, 0) + worker["sessions"]
    return found


def workers_of(broker: dict[str, Any]) -> set[tuple[str, str]]:
    return {(w["name"], w["instance"]) for w in broker["workers"] if w["alive"]}


WATCH = """
import json, sys, time
from relaax_zmq.runtime.admin_client import broker_status
end = time.time() + float(sys.argv[2])
while time.time() < end:
    hosts = {}
    for w in broker_status(sys.argv[1], timeout=2.0)["workers"]:
        host = w["name"].partition("@")[2]
        hosts[host] = hosts.get(host, 0) + w["sessions"]
    print(json.dumps({"t": time.time(), "hosts": hosts}), flush=True)
    time.sleep(0.1)
"""


def watch_placement(admin: str, seconds: float) -> subprocess.Popen:
    """A poller on client host 1 printing ``{"t", "hosts"}`` (sessions by worker host, at
    wall-clock time t) every 0.1 s for ``seconds``."""
    command = ["ip", "netns", "exec", ns("cl1"), sys.executable, "-c", WATCH, admin, str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def close_wait(host: str, port: int) -> int:
    """Half-closed TCP connections on ``host``'s ``port`` (ZeroMQ peers never reaped)."""
    found = in_ns(host, "ss", "-Htn", "state", "close-wait", f"( sport = :{port} )", timeout=10)
    return len([line for line in found.stdout.splitlines() if line.strip()])


def test_two_worker_hosts_and_two_client_hosts_train_together(network, tmp_path) -> None:
    app = host_app(network)
    files = {}
    for host in HOSTS:  # each host has its own copy of the app (and its own run folder)
        (tmp_path / host).mkdir()
        files[host] = tmp_path / host / "app.yaml"
        files[host].write_text(yaml.safe_dump(app))
    try:
        for host, roles in ROLES.items():
            started = in_ns(host, *CLI, "run", *roles, "--detach", "-c", str(files[host]))
            assert started.returncode == 0, f"{host}: {started.stdout}{started.stderr}"
        deadline, found = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            found = cluster_status(files)
            if found.get("reachable") and found["global_step"] >= 5_000:
                break
            time.sleep(1)
        assert found.get("reachable") and found["global_step"] >= 5_000, found

        # every worker of both hosts stays registered, no name changes hands, sessions on both
        names = {f"worker-{i}@{host}" for i in range(2) for host in ("wk1", "wk2")}
        first = workers_of(found)
        assert {name for name, _ in first} == names, found["workers"]
        for _ in range(8):
            found = cluster_status(files)
            assert workers_of(found) == first, found["workers"]
            time.sleep(1)
        spread = by_host(found)
        print(f"sessions by worker host: {spread}")
        assert spread["wk1"] > 0 and spread["wk2"] > 0 and found["sessions"] == 16, spread
        assert found["refused_workers"] == 0 and found["rehomed_blocks"] == 0, found

        # negative control: a second machine that calls itself wk2 runs its workers: the broker
        # refuses them, `run workers` there fails naming the refusal, wk2 loses nothing
        (tmp_path / "twin").mkdir()
        files["twin"] = tmp_path / "twin" / "app.yaml"
        files["twin"].write_text(yaml.safe_dump(app))
        twin = in_ns(
            "wk1", *CLI, "run", "workers", "--detach", "-c", str(files["twin"]), name="wk2"
        )
        in_ns("wk1", *CLI, "stop", "-c", str(files["twin"]))
        print(f"the twin host's run workers: {twin.stdout[-600:]}{twin.stderr[-600:]}")
        assert twin.returncode == 1, twin.stdout + twin.stderr
        assert "was refused by its peers" in twin.stderr or "failed to start" in twin.stderr
        assert "'worker-0@wk2' is held by a live worker" in twin.stderr + twin.stdout
        found = cluster_status(files)
        assert workers_of(found) == first and found["refused_workers"] >= 2, found
        assert found["rehomed_blocks"] == 0, found

        # one worker host stops: its workers say BYE, their sessions move to the other host
        before = found["global_step"]
        watcher = watch_placement(app["broker"]["admin"], seconds=15)
        time.sleep(3)  # the watcher has started polling
        started = time.time()
        stopped = in_ns("wk1", *CLI, "stop", "-c", str(files["wk1"]))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        moves = [json.loads(line) for line in watcher.communicate(timeout=60)[0].splitlines()]
        moved = next((m["t"] - started for m in moves if m["hosts"] == {"wk2": 16}), None)
        print(f"wk1 stopped: its sessions all on wk2 {moved} s after `relaax-zmq stop` began")
        assert moved is not None and moved <= MOVE_WITHIN, (moved, moves[-1])
        found = cluster_status(files)
        assert found["lost_blocks"] == 0 and found["refused_inits"] == 0, found
        time.sleep(3)
        found = cluster_status(files)
        assert found["global_step"] > before + 1_000, (before, found)  # training goes on
        assert close_wait("broker", 7001) <= 2
    finally:
        for host in reversed(list(HOSTS)):
            in_ns(host, *CLI, "stop", "-c", str(files[host]))
    checkpoints = list((tmp_path / "ps" / "logs" / "checkpoints").glob("ckpt-*.h5"))
    assert checkpoints, "the shard on host 2 saved its final checkpoint"
    assert list((tmp_path / "broker" / "logs" / "metrics").glob("events.out.tfevents.*"))
