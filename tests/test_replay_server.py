"""The replay server daemon for real (``python -m relaax_zmq.replay``) on free loopback ports:
transitions in over a PUSH, samples and priorities over a DEALER, the limiter holding and
refusing, peers' garbage counted, memory bounded, and a kill -9 and restart under a client."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import zmq
from exchange_support import Daemon, start_daemon
from prometheus_client.parser import text_string_to_metric_families

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.learner import wire
from relaax_zmq.learner.wire import TensorMessage
from relaax_zmq.replay.client import ReplayClient
from relaax_zmq.replay.server_core import BAD_REQUEST, KEY_BITS, MIN_SIZE, RATIO
from relaax_zmq.runtime.ports import free_port, on_free_ports

pytestmark = pytest.mark.timeout(60)

CARTPOLE = {"input": {"shape": [4]}, "output": {"actions": 2}}


def write_app(folder: Path, **replay: Any) -> tuple[Path, AppConfig]:
    """An apex app whose replay server 0 listens on free ports, /metrics on another."""
    app: dict[str, Any] = {
        "version": 1,
        "log_level": "INFO",
        "environment": {"run": "gym", "name": "CartPole-v1", "seed": 1},
        "algorithm": {"name": "apex", "config": CARTPOLE},
        "parameter_servers": {"heartbeat_interval": 0.1},
        "replay": {"samples_per_insert": None, "alpha": 1.0, **replay},
    }
    on_free_ports(app)
    app["prometheus"] = {"replay": free_port()}
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    return path, load_config(path)


@contextmanager
def server(path: Path, tag: str = "") -> Iterator[Daemon]:
    daemon = start_daemon(f"replay{tag}", "relaax_zmq.replay", path, "--shard", "0")
    try:
        yield daemon
    finally:
        daemon.stop()


@contextmanager
def sockets(config: AppConfig) -> Iterator[tuple[zmq.Socket, zmq.Socket]]:
    """A PUSH to the server's inserts and a DEALER to its samples."""
    context = zmq.Context()
    push, dealer = context.socket(zmq.PUSH), context.socket(zmq.DEALER)
    push.connect(config.replay.insert_endpoint(0))
    dealer.connect(config.replay.sample_endpoint(0))
    try:
        yield push, dealer
    finally:
        push.close(0)
        dealer.close(0)
        context.term()


def transitions(first: int, n: int, **extra: np.ndarray) -> dict[str, np.ndarray]:
    """Items ``first`` .. ``first + n - 1``: obs [i, i/2, -i], action i, priority i + 1."""
    i = np.arange(first, first + n)
    obs = np.stack([i, i / 2, -i], axis=1).astype(np.float32)
    return {
        "obs": obs,
        "action": i.astype(np.int64),
        "priority": (i + 1.0).astype(np.float32),
        **extra,
    }


def insert(push: zmq.Socket, fields: dict[str, np.ndarray], steps: int = 0) -> None:
    push.send_multipart(wire.encode(TensorMessage("transitions", fields, "test", 0, steps)))


def request(dealer: zmq.Socket, n: int, beta: float = 1.0, request_id: float = 1.0) -> None:
    meta = {"batch_size": n, "beta": beta, "request": request_id}
    dealer.send_multipart(wire.encode(TensorMessage("sample", {}, "test", meta=meta)))


def reply(dealer: zmq.Socket, timeout: float) -> TensorMessage | None:
    if not dealer.poll(int(timeout * 1000)):
        return None
    return wire.decode(dealer.recv_multipart(), 1 << 30)


def status(config: AppConfig, until: Any = None, timeout: float = 10.0) -> dict[str, float]:
    """The server's /metrics as {key: value} (``until(status)`` true, or the last one seen)."""
    url = f"http://127.0.0.1:{config.prometheus.replay}/metrics"
    deadline, found = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        with suppress(OSError):  # not serving yet (starting, restarting): ask again
            with urllib.request.urlopen(url, timeout=2) as answer:
                text = answer.read().decode()
            found = {
                s.name.removeprefix("relaax_replay_"): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            if "size" in found and (until is None or until(found)):
                return found
        time.sleep(0.1)
    return found


def test_transitions_round_trip_and_priorities_steer_the_next_sample(tmp_path) -> None:
    path, config = write_app(tmp_path, capacity=64, min_size_to_sample=8)
    with server(path) as daemon, sockets(config) as (push, dealer):
        insert(push, transitions(0, 8), steps=40)
        request(dealer, 64, beta=1.0, request_id=7.0)
        batch = reply(dealer, 10)
        assert batch is not None and batch.kind == "batch", daemon.output()
        assert batch.meta["request"] == 7.0 and batch.steps == 40  # the steps travel once
        keys = batch.fields["key"] & ((1 << KEY_BITS) - 1)
        assert keys.dtype == np.int64 and set(keys.tolist()) <= set(range(8))
        np.testing.assert_array_equal(batch.fields["obs"], transitions(0, 8)["obs"][keys])
        np.testing.assert_array_equal(batch.fields["action"], keys)
        # alpha 1: P(i) = (i + 1) / 36; weights (8 P)^-1 over the largest (the smallest P)
        expected_p = (keys + 1.0) / 36.0
        np.testing.assert_allclose(batch.fields["probability"], expected_p, rtol=1e-5)
        np.testing.assert_allclose(batch.fields["weight"], 1.0 / (keys + 1.0), rtol=1e-5)

        # all the mass on item 5, and a key from nowhere (skipped, counted)
        everything = np.arange(8, dtype=np.int64) | (
            batch.fields["key"][0] & ~((1 << KEY_BITS) - 1)
        )
        update = {"key": np.append(everything, [123]), "priority": np.zeros(9, np.float32)}
        update["priority"][5] = 1000.0
        dealer.send_multipart(wire.encode(TensorMessage("priorities", update, "test")))
        time.sleep(0.2)
        request(dealer, 32, request_id=8.0)
        again = reply(dealer, 10)
        assert again is not None and again.kind == "batch"
        assert ((again.fields["key"] & ((1 << KEY_BITS) - 1)) == 5).all()
        found = status(config, lambda s: s["sampled"] == 96)
        assert found["stale_priority_keys"] == 1 and found["priority_updates"] == 1, found
        assert (found["size"], found["inserted"], found["malformed"]) == (8, 8, 0)


def test_the_limiter_holds_samples_refuses_the_expired_and_stops_reading_inserts(tmp_path) -> None:
    path, config = write_app(tmp_path, min_size_to_sample=8, samples_per_insert=1, error_buffer=4)
    with server(path) as daemon, sockets(config) as (push, dealer):
        insert(push, transitions(0, 4))
        request(dealer, 4, request_id=1.0)  # 4 of 8 items: held, then refused after ~2 s
        refused = reply(dealer, 10)
        assert refused is not None and refused.kind == "refused", daemon.output()
        assert refused.meta["reason"] == MIN_SIZE and refused.meta["size"] == 4

        request(dealer, 4, request_id=2.0)
        assert reply(dealer, 0.5) is None  # held ...
        assert status(config, lambda s: s["held"] == 1)["held"] == 1
        insert(push, transitions(4, 4))  # ... until the table holds 8
        served = reply(dealer, 5)
        assert served is not None and served.kind == "batch" and served.meta["request"] == 2.0

        # ratio 1 with min size 8: offset 8, diff = inserts - samples must stay in [4, 12]
        for first in (8, 12, 16):  # diff 8 -> 12 (allowed), 16 (refused): the PULL stops
            insert(push, transitions(first, 4))
        blocked = status(config, lambda s: s["blocked_inserts"] >= 1)
        assert blocked["inserted"] == 16 and blocked["blocked_inserts"] >= 1, blocked
        request(dealer, 8, request_id=3.0)  # diff 12 - 8 = 4: allowed; inserts open again
        assert reply(dealer, 5).kind == "batch"
        assert status(config, lambda s: s["inserted"] == 20)["inserted"] == 20
        request(dealer, 8, request_id=4.0)  # diff 8 - 8 < 4: waits for the ratio
        refused = reply(dealer, 10)
        assert refused is not None and refused.meta["reason"] == RATIO


def test_malformed_and_wrong_schema_messages_are_counted_and_the_server_serves_on(tmp_path) -> None:
    path, config = write_app(tmp_path, min_size_to_sample=4)
    with server(path) as daemon, sockets(config) as (push, dealer):
        insert(push, transitions(0, 4))
        push.send_multipart([b"not json", b"x"])  # malformed
        insert(push, {"obs": np.zeros((4, 5), np.float32), "action": np.zeros(4, np.int64)})
        insert(push, transitions(4, 4, priority=np.full(4, np.nan, np.float32)))  # malformed
        push.send_multipart(wire.encode(TensorMessage("sample", {}, "test")))  # wrong kind
        dealer.send_multipart([b"\xff\xfe"])  # malformed request
        request(dealer, 0, request_id=5.0)  # batch_size 0: refused at once
        refused = reply(dealer, 5)
        assert refused is not None and refused.kind == "refused", daemon.output()
        assert refused.meta["reason"] == BAD_REQUEST and refused.meta["request"] == 5.0
        insert(push, transitions(4, 4))
        request(dealer, 16, request_id=6.0)
        batch = reply(dealer, 5)
        assert batch is not None and batch.kind == "batch"
        found = status(config, lambda s: s["malformed"] == 4 and s["inserted"] == 8)
        assert (found["malformed"], found["refused_schema"], found["inserted"]) == (4, 1, 8), found
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0  # SIGTERM: a clean exit


def test_memory_is_bounded_by_capacity(tmp_path) -> None:
    path, config = write_app(tmp_path, capacity=32, min_size_to_sample=1)
    with server(path), sockets(config) as (push, _):
        insert(push, transitions(0, 16))
        first = status(config, lambda s: s["inserted"] == 16)
        for i in range(1, 20):
            insert(push, transitions(16 * i, 16))
        last = status(config, lambda s: s["inserted"] == 320)
        assert last["size"] == first["capacity"] == 32
        assert last["nbytes"] == first["nbytes"] > 0  # preallocated: inserts allocate nothing


def test_a_killed_server_is_restarted_and_the_client_samples_on(tmp_path) -> None:
    path, config = write_app(tmp_path, min_size_to_sample=8)
    context = zmq.Context()
    client = ReplayClient(config, context, batch_size=4, request_timeout=1.0)
    try:
        with sockets(config) as (push, _):
            with server(path, "a") as first:
                insert(push, transitions(0, 8))
                old = client.sample(10)
                assert old is not None and len(old) == 4, first.output()
                first.kill9()
            with server(path, "b") as second:
                insert(push, transitions(100, 8))
                old, deadline = [old], time.monotonic() + 15
                while (batch := client.sample(1)) is None or batch.fields["action"][0] < 100:
                    old += [batch] if batch is not None else []  # answered before the kill
                    assert time.monotonic() < deadline, second.output()
                assert set(batch.fields["action"].tolist()) <= set(range(100, 108))
                for each in [*old, batch]:
                    assert client.update_priorities(each, np.ones(4, np.float32))
                found = status(config, lambda s: s["priority_updates"] == len(old) + 1)
                assert found["stale_priority_keys"] == 4 * len(old), found  # the old run's keys
    finally:
        client.close()
        context.term()


def test_the_client_asks_again_when_a_request_goes_unanswered(tmp_path) -> None:
    _, config = write_app(tmp_path)
    context = zmq.Context()
    silent = context.socket(zmq.ROUTER)  # reads the requests, never answers
    silent.bind(config.replay.sample_endpoint(0))
    client = ReplayClient(config, context, batch_size=4, request_timeout=0.3)
    try:
        assert client.sample(1.0) is None
        assert client.counters.timeouts >= 4 and client.counters.requests >= 6, client.counters
        seen = 0
        while silent.poll(100):
            frames = silent.recv_multipart()
            assert wire.decode(frames[1:], 1 << 20).meta["batch_size"] == 4
            seen += 1
        assert seen == client.counters.requests
    finally:
        client.close()
        silent.close(0)
        context.term()


def test_a_bad_config_or_shard_exits_1_naming_it(tmp_path) -> None:
    path, _ = write_app(tmp_path, capacity=4, min_size_to_sample=8)
    with server(path) as daemon:
        assert daemon.proc.wait(20) == 1
        assert "replay.min_size_to_sample: expected at most replay.capacity (4)" in daemon.output()
    path, _ = write_app(tmp_path)
    daemon = start_daemon("replay-shard", "relaax_zmq.replay", path, "--shard", "3")
    assert daemon.proc.wait(20) == 1
    assert "--shard: expected 0..0, got 3" in daemon.output()
