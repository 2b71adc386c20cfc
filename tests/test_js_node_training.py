"""The JavaScript CartPole under Node trains through the real gateway, broker, worker and shard.

envs/js/examples/cartpole-node.mjs (one block of VectorCartPole over a WebSocket) against the
browser example's daemons (examples/browser-cartpole/app.yaml on free ports): the same client
code a page runs, without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from browser_support import (
    RANDOM_MEAN,
    TOKEN,
    ExampleApp,
    cartpole_node,
    node_missing,
    running_example,
)

pytestmark = pytest.mark.skipif(node_missing() is not None, reason=str(node_missing()))

ENVS = 16


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleApp]:
    with running_example(tmp_path_factory.mktemp("node-cartpole"), token=TOKEN) as app:
        yield app


def test_the_node_cartpole_trains_past_a_random_policy(example: ExampleApp) -> None:
    lines = cartpole_node(
        example.ws_url,
        *("--token", TOKEN, "--envs", str(ENVS), "--seconds", "8", "--seed", "3"),
        *("--interval", "0.5"),
    )
    final = lines[-1]
    assert final["final"] is True and final["restarts"] == 0, lines
    above = [x for x in lines if x["episodes"] >= 50 and x["mean_reward_100"] > 2 * RANDOM_MEAN]
    assert above, f"no mean over {2 * RANDOM_MEAN:.0f} in 8 s: {lines}"
    print(f"Node CartPole: mean {above[0]['mean_reward_100']:.1f} after {above[0]['seconds']} s")
    assert above[0]["seconds"] <= 6, lines
    assert final["mean_reward_100"] > 2 * RANDOM_MEAN, final  # and it stays there
    counters = example.status()["counters"]
    assert counters["connections"] == 1 and counters["refused"] == {}
    assert counters["requests"] * ENVS >= final["steps"]  # one message per step of the block
    assert example.global_step() > 0, "the shard learned from Node's steps"


def test_an_exploit_run_acts_without_training(example: ExampleApp) -> None:
    step = example.settled_global_step()
    lines = cartpole_node(
        example.ws_url, "--token", TOKEN, "--envs", "4", "--seconds", "2", "--exploit"
    )
    final = lines[-1]
    assert final["steps"] > 400 and final["restarts"] == 0, lines
    time.sleep(1.2)  # a gradient would be reported with the workers' next heartbeat
    assert example.global_step() == step, "exploit mode sends no experience"


def test_without_the_token_the_gateway_lets_no_node_client_in(example: ExampleApp) -> None:
    refused = example.status()["counters"]["refused"].get("token", 0)
    (error,) = cartpole_node(example.ws_url, "--seconds", "1", status=1)
    assert "ConnectionClosed" in error["error"], error  # a refused handshake: it never opened
    assert example.status()["counters"]["refused"].get("token", 0) > refused
