"""Training across hosts: broker (+ collector), shards, workers and clients in four network
namespaces joined by a bridge, each host started with ``relaax-zmq run ROLE`` as on a cluster.

The namespaces, veth pairs and the bridge are made by the test and removed afterwards;
their addresses exist only inside them. It needs root and ``ip netns``: otherwise it skips
and says why.
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

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PREFIX = f"rzt{os.getpid() % 10000}"
SUBNET = f"10.213.{os.getpid() % 250}"
HOSTS = {"broker": 1, "ps": 2, "workers": 3, "envs": 4}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


def ns(host: str) -> str:
    return f"{PREFIX}-{host}"


def in_ns(host: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """A command inside ``host``'s namespace."""
    command = ["ip", "netns", "exec", ns(host), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def why_not() -> str | None:
    """The reason network namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = sh("ip", "netns", "add", f"{PREFIX}-probe", check=False)
    if probe.returncode != 0:
        return f"ip netns add failed: {probe.stderr.strip()}"
    sh("ip", "netns", "del", f"{PREFIX}-probe", check=False)
    return None


@pytest.fixture
def network() -> Iterator[dict[str, str]]:
    """Four hosts on one bridge: host -> its address."""
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
        ping = in_ns("envs", "ping", "-c", "1", "-W", "2", addresses["broker"], timeout=10)
        if ping.returncode != 0 and shutil.which("ping") is not None:
            pytest.fail(f"the hosts cannot reach each other: {ping.stdout} {ping.stderr}")
        yield addresses
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


def host_app(folder: Path, addresses: dict[str, str]) -> dict:
    """The bandit app, every endpoint on the address of the host that binds it."""
    app = yaml.safe_load((ROOT / "conf" / "bandit-reinforce.yaml").read_text())
    broker = addresses["broker"]
    app["broker"] = {
        k: f"tcp://{broker}:{7000 + i}" for i, k in enumerate(("frontend", "backend", "admin"))
    }
    app["metrics"] = {"endpoint": f"tcp://{broker}:7003", "flush_interval": 1.0}
    app["parameter_servers"] = {"endpoints": {"host": addresses["ps"]}}
    return app


def test_bandit_trains_across_four_hosts(network, tmp_path) -> None:
    app = host_app(tmp_path, network)
    files = {}
    for host in HOSTS:  # each host has its own copy of the app (and its own run folder)
        (tmp_path / host).mkdir()
        files[host] = tmp_path / host / "app.yaml"
        files[host].write_text(yaml.safe_dump(app))
    cli = [sys.executable, "-m", "relaax_zmq.cli"]
    try:
        for host, roles in (
            ("broker", ["broker", "metrics"]),
            ("ps", ["ps"]),
            ("workers", ["workers"]),
            ("envs", ["envs"]),
        ):
            started = in_ns(host, *cli, "run", *roles, "--detach", "-c", str(files[host]))
            assert started.returncode == 0, f"{host}: {started.stdout}{started.stderr}"
        deadline, found = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            status = in_ns("envs", *cli, "status", "--json", "-c", str(files["envs"]))
            found = json.loads(status.stdout)["broker"]
            if found.get("reachable") and found["global_step"] >= 20_000:
                break
            time.sleep(2)
        assert found.get("reachable"), found
        assert found["workers_alive"] == 1 and found["sessions"] == 16
        assert found["global_step"] >= 20_000, found  # gradients flow from host 3 to host 2
    finally:
        for host in reversed(list(HOSTS)):
            in_ns(host, *cli, "stop", "-c", str(files[host]))
    checkpoints = list((tmp_path / "ps" / "logs" / "checkpoints").glob("ckpt-*.h5"))
    assert checkpoints, "the shard on host 2 saved its final checkpoint"
    assert list((tmp_path / "broker" / "logs" / "metrics").glob("events.out.tfevents.*"))
