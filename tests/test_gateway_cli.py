"""The gateway as a user runs it: ``relaax-zmq run servers`` on the browser example serves
the page and the JavaScript client; ``run gateway`` on an app without one says so."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from browser_support import write_example_app
from test_cli_support import cli, new_bandit_app

from relaax_zmq.client import AgentProxy

pytestmark = pytest.mark.timeout(300)


def test_run_servers_serves_the_browser_example_and_stop_ends_it(tmp_path: Path) -> None:
    app = write_example_app(tmp_path / "app")
    port = yaml.safe_load(app.read_text())["gateway"]["port"]
    try:
        started = cli("run", "servers", "--detach", "-c", app)
        assert started.returncode == 0, started.stderr + started.stdout
        assert "gateway" in started.stdout
        states = {
            d["name"]: d["state"]
            for d in json.loads(cli("status", "--json", "-c", app).stdout)["daemons"]
        }
        assert states["gateway"] == "RUNNING"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert b"<canvas" in page.read()
        with AgentProxy(f"ws://127.0.0.1:{port}/rlx") as agent:  # a session through it
            agent.init()
            assert agent.update(state=[0.0, 0.0, 0.0, 0.0]) in (0, 1)
        logs = cli("logs", "gateway", "-c", app)
        assert logs.returncode == 0 and "gateway listening at ws://" in logs.stdout
    finally:
        stopped = cli("stop", "-c", app)
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def test_run_gateway_on_an_app_without_one_says_how_to_enable_it(tmp_path: Path) -> None:
    app = new_bandit_app(tmp_path / "app")
    refused = cli("run", "gateway", "-c", app)
    assert refused.returncode == 2
    assert "gateway.enabled: true" in refused.stderr
