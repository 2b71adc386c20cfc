"""The worker on the link: a fake broker (a raw ROUTER) talks to a worker thread or daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import zmq

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, Flag, MessageType, Role
from relaax_zmq.protocol.link import LINK_VERSION, Command, control, forward
from relaax_zmq.runtime.daemon import EXIT_REFUSED, StopFlag
from relaax_zmq.runtime.identity import host_name
from relaax_zmq.testing import LINEAR_POLICY_PATH
from relaax_zmq.worker import Worker

REPO = Path(__file__).resolve().parents[1]


class FakeBroker:
    """A ROUTER on a random loopback port that records what workers send."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.identity: bytes | None = None

    def recv(self, timeout: float = 5.0) -> tuple[bytes, bytes, list[bytes]]:
        """(worker identity, command, other frames) of the next message."""
        if not self.socket.poll(int(timeout * 1000)):
            raise TimeoutError(f"nothing from the worker within {timeout} s")
        identity, command, *rest = self.socket.recv_multipart()
        return identity, command, rest

    def expect(
        self,
        command: Command,
        timeout: float = 5.0,
        skip: tuple[Command, ...] = (Command.HEARTBEAT,),
    ) -> list[bytes]:
        """Frames after the command of the next ``command`` message, skipping ``skip``."""
        deadline = time.monotonic() + timeout
        while True:
            identity, got, rest = self.recv(max(0.0, deadline - time.monotonic()))
            self.identity = identity
            if got == command.value:
                return rest
            assert Command(got) in skip, f"expected {command.name}, got {got!r}"

    def send(self, *frames: Any) -> None:
        assert self.identity is not None, "no worker has spoken yet"
        self.socket.send_multipart([self.identity, *frames])

    def assign(self, session_id: int, count: int, *, exploit=False, restart=False) -> None:
        body = {"session_id": session_id, "count": count, "exploit": exploit, "restart": restart}
        self.send(*control(Command.ASSIGN, **body))

    def request(self, client: bytes, message) -> None:
        self.send(*forward(Command.REQUEST, client, encode(message)))

    def reply(self, timeout: float = 5.0) -> tuple[bytes, Any]:
        """(client identity, decoded RLX reply) of the next REP."""
        client, *rlx = self.expect(Command.REPLY, timeout)
        return client, decode(rlx)

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()


def write_config(tmp_path: Path, port: int, **overrides: Any) -> Path:
    """An app YAML with the linear policy and the broker backend on ``port``."""
    others = [p for p in (40001, 40002, 40003) if p != port][:2]
    data: dict[str, Any] = {
        "version": 1,
        "log_level": "WARNING",
        "environment": {"name": "CartPole-v1"},
        "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
        "broker": {
            "backend": f"tcp://127.0.0.1:{port}",
            "frontend": f"tcp://127.0.0.1:{others[0]}",
            "admin": f"tcp://127.0.0.1:{others[1]}",
            "heartbeat_interval": 0.1,
            "heartbeat_liveness": 100,
        },
        "workers": {"max_sessions": 32, "max_batch": 64},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        data[section][key] = value
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def obs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


@pytest.fixture
def broker() -> Iterator[FakeBroker]:
    fake = FakeBroker()
    yield fake
    fake.close()


@pytest.fixture
def start_worker(broker: FakeBroker, tmp_path: Path) -> Iterator[Any]:
    """Start ``Worker.run`` in a thread with config overrides; wait for its REG."""
    running: list[tuple[StopFlag, threading.Thread]] = []

    def start(name: str = "w1", **overrides: Any) -> tuple[Worker, dict]:
        config: AppConfig = load_config(write_config(tmp_path, broker.port, **overrides))
        worker = Worker(config, name=name)
        stop = StopFlag()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))
        reg = json.loads(broker.expect(Command.REGISTER)[0])
        return worker, reg

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(5)
        assert not thread.is_alive()


def test_registers_with_capacity_and_heartbeats_with_stats(broker, start_worker):
    worker, reg = start_worker(name="alpha")
    assert broker.identity == f"alpha#{worker.instance}".encode()  # unique per process
    assert len(worker.instance) == 16
    assert reg == {
        "worker": "alpha",
        "instance": worker.instance,
        "pid": os.getpid(),
        "capacity": 32,
        "link_version": LINK_VERSION,
    }
    beats = [json.loads(broker.expect(Command.HEARTBEAT, skip=())[0]) for _ in range(3)]
    assert all(b["sessions"] == 0 and "batches" in b and "agent" in b for b in beats)


def test_assign_then_update_gets_an_action_for_the_client(broker, start_worker):
    start_worker()
    broker.assign(100, 3)
    broker.request(b"client-A", messages.update(100, state=obs(3), sequence=41))
    client, reply = broker.reply()
    assert client == b"client-A"
    assert reply.type == MessageType.ACTION
    assert (reply.sequence, reply.session_id, reply.session_count) == (41, 100, 3)
    assert reply.tensors[Role.ACTION].shape == (3,)
    assert not reply.flags & Flag.RESTART


def test_requests_waiting_together_are_batched(broker, start_worker):
    worker, _ = start_worker(**{"workers.max_batch_wait_ms": 300, "workers.max_batch": 20})
    for b in range(20):
        broker.assign(1000 + b, 1)
    for b in range(20):
        broker.request(f"c{b}".encode(), messages.update(1000 + b, state=obs(1, b), sequence=b))
    replies = dict(broker.reply() for _ in range(20))
    assert sorted(replies) == sorted(f"c{b}".encode() for b in range(20))
    assert all(r.type == MessageType.ACTION for r in replies.values())
    stats = json.loads(broker.expect(Command.HEARTBEAT, skip=())[0])
    assert stats["steps"] == 20
    assert stats["batches"] < 20
    assert stats["agent"]["batches"] == stats["batches"]


def test_malformed_frames_are_answered_and_the_worker_keeps_serving(broker, start_worker):
    start_worker()
    broker.assign(5, 1)
    frames = encode(messages.update(5, state=obs(1), sequence=9))
    broker.send(Command.REQUEST.value, b"bad", frames[0], frames[1], b"short")
    client, reply = broker.reply()
    code, text, _ = messages.read_error(reply)
    assert client == b"bad" and code == ErrorCode.MALFORMED and reply.sequence == 9
    assert "payload" in text
    broker.send(Command.REQUEST.value, b"junk", b"not an RLX header")
    client, reply = broker.reply()
    assert client == b"junk" and messages.read_error(reply)[0] == ErrorCode.MALFORMED
    broker.request(b"good", messages.update(5, state=obs(1), sequence=10))
    client, reply = broker.reply()
    assert client == b"good" and reply.type == MessageType.ACTION


def test_garbage_link_messages_are_ignored(broker, start_worker):
    worker, _ = start_worker()
    broker.send(b"NOPE", b"{}")
    broker.send(Command.ASSIGN.value, b"not json")
    broker.send(Command.ASSIGN.value, json.dumps({"session_id": 5}).encode())
    broker.send(Command.REQUEST.value)  # no client identity
    broker.send(Command.REGISTER.value, b"{}")  # a worker -> broker command
    broker.assign(6, 1)
    broker.request(b"c", messages.update(6, state=obs(1)))
    assert broker.reply()[1].type == MessageType.ACTION
    assert worker.counters.ignored == 5


def test_controls_apply_in_arrival_order_after_pending_updates(broker, start_worker):
    start_worker(**{"workers.max_batch_wait_ms": 200})
    broker.assign(7, 1)
    broker.request(b"c", messages.update(7, state=obs(1), sequence=1))
    broker.send(*control(Command.RELEASE, session_id=7))
    broker.request(b"c", messages.update(7, state=obs(1), sequence=2))
    broker.assign(8, 2, restart=True)
    broker.request(b"d", messages.update(8, reward=[1.0, 1.0], state=obs(2), sequence=3))
    replies = {r.sequence: r for _, r in (broker.reply() for _ in range(3))}
    assert replies[1].type == MessageType.ACTION
    assert messages.read_error(replies[2])[0] == ErrorCode.UNKNOWN_SESSION
    assert replies[3].type == MessageType.ACTION and replies[3].flags & Flag.RESTART


def test_reset_and_metrics_are_answered_done(broker, start_worker):
    worker, _ = start_worker()
    broker.assign(9, 1)
    broker.send(*control(Command.RESTART, session_id=9))
    broker.request(b"c", messages.simple(MessageType.RESET, 9, 1, sequence=1))
    broker.request(b"c", messages.metrics(9, {"reward": 3.0}, sequence=2))
    replies = [broker.reply()[1] for _ in range(2)]
    assert [(r.type, r.sequence) for r in replies] == [(MessageType.DONE, 1), (MessageType.DONE, 2)]
    assert worker.host.scalars["reward"].last == 3.0


def test_silent_broker_makes_the_worker_register_again_without_sessions(broker, start_worker):
    worker, _ = start_worker(**{"broker.heartbeat_liveness": 3})
    broker.assign(11, 1)
    broker.request(b"c", messages.update(11, state=obs(1)))
    assert broker.reply()[1].type == MessageType.ACTION
    # while the broker heartbeats, the worker stays
    until = time.monotonic() + 0.6
    while time.monotonic() < until:
        broker.send(*control(Command.HEARTBEAT))
        while broker.socket.poll(50):
            _, command, _ = broker.recv()
            assert command != Command.REGISTER.value
    assert worker.counters.reconnects == 0
    # silence: a fresh socket registers again and the block is gone
    reg = json.loads(broker.expect(Command.REGISTER, timeout=3)[0])
    assert reg["worker"] == "w1" and worker.counters.reconnects == 1
    broker.request(b"c", messages.update(11, state=obs(1), sequence=5))
    _, reply = broker.reply()
    assert messages.read_error(reply)[0] == ErrorCode.UNKNOWN_SESSION


def test_stopping_sends_bye(broker, tmp_path):
    worker = Worker(load_config(write_config(tmp_path, broker.port)), name="w2")
    stop = StopFlag()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    broker.expect(Command.REGISTER)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert json.loads(broker.expect(Command.BYE)[0]) == {}


def test_daemon_serves_and_exits_0_on_sigterm(broker, tmp_path):
    config = write_config(tmp_path, broker.port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaax_zmq.worker", "--config", str(config), "--name", "daemon-1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        reg = json.loads(broker.expect(Command.REGISTER, timeout=20)[0])
        assert reg["worker"] == f"daemon-1@{host_name()}" and reg["pid"] == proc.pid
        broker.assign(3, 2)
        broker.request(b"cl", messages.update(3, state=obs(2), sequence=8))
        client, reply = broker.reply()
        assert client == b"cl" and reply.type == MessageType.ACTION and reply.sequence == 8
        proc.send_signal(signal.SIGTERM)
        broker.expect(Command.BYE)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_refused_worker_waits_out_a_dead_holder_and_serves_once_accepted(broker, start_worker):
    worker, first = start_worker(**{"broker.heartbeat_liveness": 3})
    broker.send(*control(Command.REFUSE, reason="the worker name 'w1' is held by a live worker"))
    again = json.loads(broker.expect(Command.REGISTER, timeout=3, skip=())[0])  # no HB between
    assert again["instance"] == first["instance"] and worker.counters.refused == 1
    broker.send(*control(Command.HEARTBEAT))  # accepted: the holder was declared dead
    broker.assign(7, 1)
    broker.request(b"c", messages.update(7, state=obs(1), sequence=3))
    assert broker.reply()[1].type == MessageType.ACTION


def test_a_daemon_refused_twice_exits_78_naming_the_holder(broker, tmp_path):
    config = write_config(tmp_path, broker.port, **{"broker.heartbeat_liveness": 3})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "relaax_zmq.worker", "--config", str(config)]
    proc = subprocess.Popen([*command, "--name", "twin"], env=env, stderr=subprocess.PIPE)
    try:
        reason = "the worker name 'twin@vm' is held by a live worker (pid 99)"
        for _ in range(2):
            broker.expect(Command.REGISTER, timeout=20, skip=())
            broker.send(*control(Command.REFUSE, reason=reason))
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == EXIT_REFUSED == 78  # supervisord leaves it down
        assert f"refused this worker again: {reason}" in stderr.decode()
        assert not broker.socket.poll(200)  # no BYE from a worker that never registered
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
