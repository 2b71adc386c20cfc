"""examples/browser-cartpole in a real browser: Debian's Chromium, headless, driven by selenium.

One stack of the example's real daemons (shard, broker, worker, gateway) and one browser serve
the module. The page is the environment: it loads the JavaScript client from the gateway's
/client/, steps its VectorCartPole as one block through the gateway and must train past a
random policy; its exploit button reconnects it as a paced, non-training client. A page of a
foreign origin must not get a WebSocket at all. Screenshots land in the test's folder and in
/tmp/browser-cartpole.png.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    RANDOM_MEAN,
    TOKEN,
    ExampleApp,
    chromium,
    chromium_missing,
    page_figures,
    running_example,
    save_screenshot,
    wait_figures,
)

from relaax_zmq.runtime.ports import free_port

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))

SHOT = Path("/tmp/browser-cartpole.png")
ENVS = 16
FPS = 50


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleApp]:
    with running_example(tmp_path_factory.mktemp("browser-cartpole"), token=TOKEN) as app:
        yield app


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def open_page(browser: Any, example: ExampleApp) -> None:
    if not browser.current_url.startswith(example.page):
        browser.get(f"{example.page}?n={ENVS}&seed=1&token={TOKEN}")


def test_the_page_trains_cartpole_through_the_gateway_past_a_random_policy(
    browser: Any, example: ExampleApp, tmp_path: Path
) -> None:
    started = time.monotonic()
    open_page(browser, example)
    first = wait_figures(browser, lambda f: f.get("steps", 0) > 0, 20, "the first actions")
    assert first["mode"] == "train" and first["n"] == ENVS and first["url"] == example.ws_url
    trained = wait_figures(
        browser,
        lambda f: f["episodes"] >= 50 and (f["meanReward"] or 0) > 2 * RANDOM_MEAN,
        45,
        f"a mean reward over {2 * RANDOM_MEAN:.0f}",
    )
    print(
        f"browser CartPole: mean {trained['meanReward']:.1f} after "
        f"{time.monotonic() - started:.1f} s, {trained['steps']:,} steps"
    )
    assert trained["state"] == "running" and trained["error"] is None
    assert trained["restarts"] == 0 and trained["connections"] == 1
    counters = example.status()["counters"]
    assert counters["connections_open"] == 1 and counters["refused"] == {}  # the token passed
    assert counters["requests"] * ENVS >= trained["steps"]  # one message per step of the block
    assert example.global_step() > 0, "the shard learned from the page's steps"
    save_screenshot(browser, tmp_path / "train.png")


def test_the_exploit_button_reconnects_as_a_paced_client_that_trains_nothing(
    browser: Any, example: ExampleApp, tmp_path: Path
) -> None:
    open_page(browser, example)
    wait_figures(browser, lambda f: f.get("state") == "running", 20, "the page to run")
    before = page_figures(browser)
    browser.find_element("id", "toggle").click()
    playing = wait_figures(
        browser,
        lambda f: f["mode"] == "exploit" and f["state"] == "running",
        15,
        "exploit mode",
    )
    assert playing["connections"] == before["connections"] + 1
    assert "exploit=1" in browser.current_url  # a reload keeps the mode
    step = example.settled_global_step()
    start, since = page_figures(browser), time.monotonic()
    time.sleep(2.0)
    end = page_figures(browser)
    rate = (end["steps"] - start["steps"]) / (time.monotonic() - since)
    assert 0.5 * ENVS * FPS < rate < 1.3 * ENVS * FPS, end  # real speed: 50 steps/s each
    assert end["state"] == "running" and end["error"] is None, end
    assert example.global_step() == step, "exploit mode sends no experience"
    assert example.status()["counters"]["connections_open"] == 1  # the training one closed
    shot = save_screenshot(browser, tmp_path / "exploit.png", copy_to=SHOT)
    assert shot.stat().st_size > 10_000


HOSTILE_PAGE = """<!doctype html><title>elsewhere</title><script>
window.result = null;
const ws = new WebSocket("%s", ["rlx.v1"]);
ws.onopen = () => { window.result = {opened: true}; };
ws.onclose = (e) => { window.result = window.result || {opened: false, code: e.code}; };
</script>"""


def test_a_page_of_a_foreign_origin_gets_no_websocket(
    browser: Any, example: ExampleApp, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text(HOSTILE_PAGE % example.ws_url)
    handler = partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    refused = example.status()["counters"]["refused"].get("origin", 0)
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/index.html")
        deadline = time.monotonic() + 10
        result = None
        while result is None and time.monotonic() < deadline:
            result = browser.execute_script("return window.result;")
            time.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
    assert result == {"opened": False, "code": 1006}  # the browser sees a failed handshake
    assert example.status()["counters"]["refused"].get("origin", 0) == refused + 1


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's stderr."""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_page_solves_cartpole(tmp_path: Path) -> None:
    envs = 32
    with running_example(tmp_path / "app") as app, chromium(tmp_path / "profile") as driver:
        started = time.monotonic()
        driver.get(f"{app.page}?n={envs}&seed=2")
        try:
            solved = wait_figures(
                driver,
                lambda f: f.get("episodes", 0) >= 100 and (f.get("meanReward") or 0) >= 475,
                420,
                "a mean reward of 475",
            )
        finally:
            save_screenshot(
                driver,
                tmp_path / "solved.png",
                copy_to=SHOT.with_name("browser-cartpole-solved.png"),
            )
        print(
            f"browser CartPole ({envs} envs): solved in {time.monotonic() - started:.1f} s, "
            f"{solved['steps']:,} steps, {solved['episodes']:,} episodes"
        )
        assert solved["error"] is None
