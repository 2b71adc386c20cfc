"""The browser CartPole example's daemons on free ports, and a headless Chromium to open it.

``running_example`` starts examples/browser-cartpole/app.yaml's real daemons (shards, broker,
worker, gateway) with LocalStack, every port free and every folder in the test's; ``chromium``
opens Debian's Chromium through its chromedriver (selenium downloads nothing); ``cartpole_node``
runs the JavaScript client's Node example against a gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from exchange_support import wait_until

from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.ports import free_port, on_free_ports

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "browser-cartpole"
NODE_EXAMPLE = ROOT / "envs" / "js" / "examples" / "cartpole-node.mjs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: A uniformly random CartPole policy's mean episode reward is about 22.
RANDOM_MEAN = 22.0
#: The gateway's access token in the tests (the page takes it from its query, Node from --token).
TOKEN = "browser-test-token_0123456789"


def write_example_app(folder: Path, **gateway: Any) -> Path:
    """The example's app.yaml with free ports, its site and marker resolved, folders in ``folder``."""
    app = yaml.safe_load((EXAMPLE / "app.yaml").read_text())
    on_free_ports(app)
    app["environment"]["run"] = str(ROOT / "envs" / "c" / "external.py") + ":ExternalClients"
    app["gateway"].update(port=free_port(), static_dir=str(EXAMPLE / "site"), **gateway)
    ps = app["parameter_servers"]
    ps["max_global_step"] = None
    ps["checkpoint"] = {"dir": str(folder / "checkpoints"), "every_seconds": None}
    app["metrics"]["logdir"] = str(folder / "tb")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    return path


@dataclass
class ExampleApp:
    """The running example: its stack and the gateway's address."""

    stack: LocalStack
    port: int

    @property
    def page(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rlx"

    def status(self) -> dict[str, Any]:
        """The gateway's GET /status."""
        with urllib.request.urlopen(f"{self.page}status", timeout=5) as reply:
            return json.loads(reply.read())

    def global_step(self) -> int:
        from relaax_zmq.runtime.watching import global_step

        return global_step(self.stack.config)

    def settled_global_step(self, quiet: float = 1.5, timeout: float = 15.0) -> int:
        """The global step once it stayed the same for ``quiet`` seconds (gradients in flight
        landed; workers report it with their heartbeats, every second)."""
        deadline = time.monotonic() + timeout
        step, since = self.global_step(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.global_step()
            if now != step:
                step, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return step
        raise AssertionError(f"the global step still moved after {timeout} s")


@contextmanager
def running_example(folder: Path, **gateway: Any) -> Iterator[ExampleApp]:
    """The example's daemons, ready (workers synced, gateway answering); all stopped after."""
    stack = LocalStack(write_example_app(folder, **gateway), ready_timeout=120).start()
    app = ExampleApp(stack, stack.config.gateway.port)
    try:
        wait_until(lambda: _answers(app), 30, "the gateway to answer")
        yield app
    except BaseException:
        print(stack.logs())
        raise
    finally:
        gateways = [d for d in stack.daemons if d.name == "gateway"]
        for daemon in gateways:  # first: its connections' blocks close while the broker is up
            daemon.stop()
        stack.stop()


def _answers(app: ExampleApp) -> bool:
    try:
        app.status()
    except OSError:
        return False
    return True


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/setup.sh as root (Debian's chromium)"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is missing: run scripts/setup.sh as root (chromium-driver)"
    return None


@contextmanager
def chromium(profile: Path, width: int = 1100, height: int = 800) -> Iterator[Any]:
    """A headless Chromium (selenium WebDriver) with its own profile folder; quit after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_figures(driver: Any) -> dict[str, Any]:
    """The page's ``window.relaax`` (examples/browser-cartpole/README.md), or {} before it."""
    return driver.execute_script(
        "return window.relaax ? JSON.parse(JSON.stringify(window.relaax)) : {};"
    )


def wait_figures(driver: Any, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll the page's figures until ``predicate(figures)``; the last figures in the failure."""
    deadline = time.monotonic() + timeout
    figures: dict[str, Any] = {}
    while time.monotonic() < deadline:
        figures = page_figures(driver)
        if predicate(figures):
            return figures
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: {figures}")


def save_screenshot(driver: Any, path: Path, copy_to: Path | None = None) -> Path:
    """A PNG of the page at ``path`` (and a copy at ``copy_to``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), "chromium took no screenshot"
    if copy_to is not None:
        with contextlib.suppress(OSError):  # another user's file: the test's own is enough
            shutil.copyfile(path, copy_to)
    return path


def node_missing() -> str | None:
    """Why the Node example cannot run here, or None."""
    return None if shutil.which("node") else "node is not installed (Node 20+ runs envs/js)"


def cartpole_node(
    url: str, *args: str, timeout: float = 120, status: int = 0
) -> list[dict[str, Any]]:
    """Run envs/js/examples/cartpole-node.mjs against ``url``: its JSON lines, stdout's then
    stderr's (the exit status ``status`` asserted)."""
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "--experimental-websocket", str(NODE_EXAMPLE), "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout.splitlines() + result.stderr.splitlines()
    return [json.loads(line) for line in out if line.startswith("{")]
