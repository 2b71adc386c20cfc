"""The broker over real ZeroMQ sockets (tcp loopback): fake workers speak the link,
fake clients speak RLX, the admin endpoint answers JSON. The broker runs in a
thread; one test runs the real daemon as a subprocess and stops it with SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from relaax_zmq.broker import Broker
from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.protocol import (
    ErrorCode,
    Flag,
    Message,
    MessageType,
    decode,
    encode,
    link,
    messages,
)
from relaax_zmq.protocol.constants import MAGIC
from relaax_zmq.protocol.header import LAYOUT as HEADER
from relaax_zmq.protocol.link import Command
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing import LINEAR_POLICY_PATH

WAIT = 2.0  # seconds any expected message may take


def broker_mapping(protocol: dict[str, Any] | None = None, **broker: Any) -> dict[str, Any]:
    front, back, adm = free_port(), free_port(), free_port()
    settings = {
        "frontend": f"tcp://127.0.0.1:{front}",
        "backend": f"tcp://127.0.0.1:{back}",
        "admin": f"tcp://127.0.0.1:{adm}",
        "heartbeat_interval": 0.1,
        "heartbeat_liveness": 3,
        "min_free_memory_mib": 0,
    }
    settings.update(broker)
    return {
        "version": 1,
        "log_level": "DEBUG",
        "environment": {"run": "bandit"},
        "algorithm": {"path": str(LINEAR_POLICY_PATH)},
        "broker": settings,
        "protocol": protocol or {},
    }


# ------------------------------------------------------------------ fakes


class FakeWorker:
    """A worker DEALER in its own thread: registers, heartbeats, records what it hears.

    ``auto``: answer every REQ itself (action = this worker's ``number`` for each
    session; done for reset/metrics), with RESTART on the first reply after an
    ``ASSIGN{restart: true}`` of the block. ``silent``: stop heartbeating and
    ignore everything (a hung or dead worker).
    """

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        name: str,
        capacity: int = 8,
        *,
        number: int = 0,
        auto: bool = True,
        register: bool = True,
        instance: str | None = None,
    ) -> None:
        self.name, self.capacity, self.number, self.auto = name, capacity, number, auto
        #: with an instance the socket identity is ``name#instance``, as a real worker's
        self.instance = instance or "fake"
        self.identity = (name if instance is None else f"{name}#{instance}").encode()
        self.inbox: queue.Queue[list[bytes]] = queue.Queue()
        self.outbox: queue.Queue[list[bytes]] = queue.Queue()
        self.silent = threading.Event()
        self.skipped: list[list[bytes]] = []
        self._restart: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ctx, endpoint, register), daemon=True
        )
        self._thread.start()

    def _run(self, ctx: zmq.Context, endpoint: str, register: bool) -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, self.identity)
        sock.connect(endpoint)
        if register:
            sock.send_multipart(self.reg_frames())
        next_hb = 0.0
        try:
            while not self._stop.is_set():
                while not self.outbox.empty():
                    sock.send_multipart(self.outbox.get_nowait())
                if not self.silent.is_set() and time.monotonic() >= next_hb:
                    sock.send_multipart(link.control(Command.HEARTBEAT, sessions=0))
                    next_hb = time.monotonic() + 0.05
                if not sock.poll(10):
                    continue
                frames = sock.recv_multipart()
                if self.silent.is_set() or frames[0] == Command.HEARTBEAT.value:
                    continue
                if frames[0] == Command.ASSIGN.value:
                    body = json.loads(frames[1])
                    if body["restart"]:
                        self._restart.add(body["session_id"])
                self.inbox.put(frames)
                if self.auto and frames[0] == Command.REQUEST.value:
                    sock.send_multipart(self.answer(frames))
        finally:
            sock.close(0)

    def reg_frames(self) -> list[bytes]:
        return link.control(
            Command.REGISTER,
            worker=self.name,
            instance=self.instance,
            pid=os.getpid(),
            capacity=self.capacity,
            link_version=link.LINK_VERSION,
        )

    def answer(self, req: list[bytes]) -> list[bytes]:
        """The REP for a REQ, as a real worker would build it."""
        request = decode(req[2:])
        sid, n, seq = request.session_id, request.session_count, request.sequence
        restart = sid in self._restart
        self._restart.discard(sid)
        if request.type == MessageType.UPDATE:
            reply = messages.action(
                sid, np.full(n, self.number, np.int32), sequence=seq, restart=restart
            )
        else:
            reply = messages.simple(MessageType.DONE, sid, n, sequence=seq, restart=restart)
        return [Command.REPLY.value, req[1], *encode(reply)]

    def send(self, frames: list[bytes]) -> None:
        self.outbox.put(frames)

    def expect(self, command: Command, timeout: float = WAIT) -> list[bytes]:
        """The next message with ``command`` (others are kept in ``skipped``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                frames = self.inbox.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no {command.name} in {timeout} s") from None
            if frames[0] == command.value:
                return frames
            self.skipped.append(frames)

    def nothing(self, command: Command, wait: float = 0.2) -> None:
        """Assert that no ``command`` arrives within ``wait`` seconds."""
        with pytest.raises(AssertionError):
            self.expect(command, wait)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def body(frames: list[bytes]) -> dict[str, Any]:
    return json.loads(frames[1])


class FakeClient:
    """A client DEALER speaking raw RLX."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.sid = 0
        self.n = 1
        self.seq = 0

    def send_raw(self, frames: list[Any]) -> None:
        self.sock.send_multipart(frames)

    def send(self, message: Message) -> None:
        self.send_raw(encode(message))

    def recv_raw(self, timeout: float = WAIT) -> list[bytes]:
        assert self.sock.poll(int(timeout * 1000)), "no reply from the broker"
        return self.sock.recv_multipart()

    def recv(self, timeout: float = WAIT) -> Message:
        return decode(self.recv_raw(timeout))

    def nothing(self, wait: float = 0.2) -> None:
        assert not self.sock.poll(int(wait * 1000)), "unexpected reply"

    def request(self, message: Message) -> Message:
        self.send(message)
        reply = self.recv()
        assert reply.sequence == message.sequence
        return reply

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def init(self, n: int = 1, *, exploit: bool = False, session_id: int = 0) -> Message:
        reply = self.request(
            messages.init(n, exploit=exploit, session_id=session_id, sequence=self.next_seq())
        )
        if reply.type == MessageType.READY:
            self.sid, self.n = reply.session_id, reply.session_count
        return reply

    def update(self, *, terminal: bool = False, state: Any = None) -> Message:
        state = np.zeros((self.n, 3), np.float32) if state is None else state
        return self.request(self.update_msg(terminal=terminal, state=state))

    def update_msg(self, *, terminal: bool = False, state: Any = None) -> Message:
        state = np.zeros((self.n, 3), np.float32) if state is None else state
        return messages.update(
            self.sid,
            reward=np.ones(self.n, np.float32),
            state=state,
            terminal=terminal,
            session_count=self.n,
            sequence=self.next_seq(),
        )

    def simple(self, mtype: MessageType, *, session_id: int | None = None) -> Message:
        sid = self.sid if session_id is None else session_id
        n = self.n if sid else 0
        return self.request(messages.simple(mtype, sid, n, sequence=self.next_seq()))


def error_of(reply: Message) -> tuple[int, str]:
    assert reply.type == MessageType.ERROR, f"expected an error, got {reply.type}"
    code, text, _ = messages.read_error(reply)
    return code, text


class Exchange:
    """A broker thread plus factories for fake peers; everything closed at teardown."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.ctx = ctx
        self.workers: list[FakeWorker] = []
        self.clients: list[FakeClient] = []
        self.broker: Broker | None = None
        self.config: AppConfig | None = None
        self._stop = StopFlag()
        self._thread: threading.Thread | None = None
        self._admin: zmq.Socket | None = None
        self.failure: BaseException | None = None

    def start(
        self,
        memory: Callable[[], int] | None = None,
        protocol: dict[str, Any] | None = None,
        **broker: Any,
    ) -> Exchange:
        self.config = parse_config(broker_mapping(protocol, **broker))
        extra = {} if memory is None else {"memory": memory}
        self.broker = Broker(self.config, context=self.ctx, **extra)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self.broker.bound.wait(WAIT)
        return self

    def _serve(self) -> None:
        assert self.broker is not None
        try:
            self.broker.run(self._stop)
        except BaseException as exc:  # surfaced by the teardown
            self.failure = exc
            raise

    def worker(self, name: str, capacity: int = 8, *, wait: bool = True, **kw: Any) -> FakeWorker:
        assert self.config is not None
        worker = FakeWorker(self.ctx, self.config.broker.backend, name, capacity, **kw)
        self.workers.append(worker)
        if wait:
            self.wait_for(lambda s: name in [w["name"] for w in s["workers"]])
        return worker

    def client(self) -> FakeClient:
        assert self.config is not None
        client = FakeClient(self.ctx, self.config.broker.frontend)
        self.clients.append(client)
        return client

    def admin_raw(self, frames: list[bytes]) -> list[bytes]:
        assert self.config is not None
        if self._admin is None:
            self._admin = self.ctx.socket(zmq.DEALER)
            self._admin.setsockopt(zmq.LINGER, 0)
            self._admin.connect(self.config.broker.admin)
        self._admin.send_multipart(frames)
        assert self._admin.poll(int(WAIT * 1000)), "no admin reply"
        return self._admin.recv_multipart()

    def admin(self, request: Any) -> dict[str, Any]:
        raw = request if isinstance(request, bytes) else json.dumps(request).encode()
        (reply,) = self.admin_raw([raw])
        return json.loads(reply)

    def status(self) -> dict[str, Any]:
        reply = self.admin({"command": "status"})
        assert reply["ok"] is True
        return reply["status"]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            status = self.status()
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"condition never met; status: {status}"
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            assert not self._thread.is_alive(), "broker did not stop"
        for worker in self.workers:
            worker.stop()
        for client in self.clients:
            client.sock.close(0)
        if self._admin is not None:
            self._admin.close(0)


@pytest.fixture
def ex() -> Iterator[Exchange]:
    ctx = zmq.Context()
    exchange = Exchange(ctx)
    try:
        yield exchange
    finally:
        exchange.close()
        ctx.term()
    assert exchange.failure is None, f"broker loop died: {exchange.failure!r}"


# --------------------------------------------------------- init and routing


def test_init_ready_and_assign_to_least_loaded(ex: Exchange) -> None:
    ex.start()
    wa, wb = ex.worker("w-a", 4), ex.worker("w-b", 4)
    first = ex.client()
    ready = first.init(2)
    assert ready.type == MessageType.READY
    assert ready.session_count == 2 and 0 < ready.session_id < 1 << 62
    assert list(ready.tensors[12]) == [1]  # versions
    assign = wa.expect(Command.ASSIGN)  # tie at 0/4: smallest name
    assert body(assign) == {"session_id": ready.session_id, "count": 2, "exploit": False,
                            "restart": False}  # fmt: skip
    second = ex.client()
    ready2 = second.init(1, exploit=True)
    assert ready2.flags & Flag.EXPLOIT
    assert body(wb.expect(Command.ASSIGN))["exploit"] is True  # 0/4 < 2/4
    assert not set(range(ready.session_id, ready.session_id + 2)) & {ready2.session_id}
    wa.nothing(Command.ASSIGN, 0.1)


def test_update_forwarded_untouched_and_reply_routed_back(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", auto=False)
    client = ex.client()
    client.init(2)
    worker.expect(Command.ASSIGN)
    state = np.arange(2 * 5, dtype=np.float64).reshape(2, 5)
    request = client.update_msg(state=state)
    sent = [bytes(f) for f in encode(request)]
    client.send_raw(sent)
    req = worker.expect(Command.REQUEST)
    assert req[2:] == sent  # header, descriptors and payloads byte for byte
    reply = [*encode(messages.action(client.sid, np.array([3, 4]), sequence=request.sequence))]
    reply_bytes = [bytes(f) for f in reply]
    worker.send([Command.REPLY.value, req[1], *reply_bytes])
    assert client.recv_raw() == reply_bytes
    # the in-flight entry is cleared: a second copy of the reply is stale and dropped
    worker.send([Command.REPLY.value, req[1], *reply_bytes])
    client.nothing(0.2)
    assert ex.status()["counters"]["stale_replies"] == 1


def test_pipelined_requests_and_reset_metrics_forwarded(ex: Exchange) -> None:
    ex.start()
    ex.worker("w", number=7)
    client = ex.client()
    client.init(1)
    msgs = [client.update_msg() for _ in range(5)]
    for m in msgs:
        client.send(m)
    replies = [client.recv() for _ in msgs]
    assert sorted(r.sequence for r in replies) == [m.sequence for m in msgs]
    assert all(r.type == MessageType.ACTION and int(r.tensors[4][0]) == 7 for r in replies)
    assert client.simple(MessageType.RESET).type == MessageType.DONE
    metrics = messages.metrics(client.sid, {"loss": 1.0}, sequence=client.next_seq())
    assert client.request(metrics).type == MessageType.DONE


def test_heartbeat_answered_with_same_sequence(ex: Exchange) -> None:
    ex.start()
    ex.worker("w")
    client = ex.client()
    beat = client.simple(MessageType.HEARTBEAT, session_id=0)
    assert beat.type == MessageType.HEARTBEAT and beat.sequence == client.seq
    client.init(3)
    beat = client.simple(MessageType.HEARTBEAT)
    assert (beat.type, beat.session_id, beat.session_count) == (
        MessageType.HEARTBEAT,
        client.sid,
        3,
    )
    unknown = messages.simple(MessageType.HEARTBEAT, client.sid + 5, 1, sequence=99)
    assert error_of(client.request(unknown))[0] == ErrorCode.UNKNOWN_SESSION


def test_close_answers_done_and_releases_on_worker(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w")
    client = ex.client()
    client.init(2)
    assert body(worker.expect(Command.ASSIGN))["session_id"] == client.sid
    done = client.simple(MessageType.CLOSE)
    assert (done.type, done.session_id) == (MessageType.DONE, client.sid)
    assert body(worker.expect(Command.RELEASE)) == {"session_id": client.sid}
    code, text = error_of(client.update())
    assert code == ErrorCode.UNKNOWN_SESSION and str(client.sid) in text
    assert ex.status()["sessions"] == {"blocks": 0, "sessions": 0}


# ---------------------------------------------------------------- admission


def test_busy_without_capacity_then_admitted_when_capacity_frees(ex: Exchange) -> None:
    ex.start()
    ex.worker("w", capacity=2)
    first, second = ex.client(), ex.client()
    assert first.init(2).type == MessageType.READY
    code, text = error_of(second.init(1))
    assert code == ErrorCode.BUSY and text.startswith("capacity:") and "1 sessions" in text
    first.simple(MessageType.CLOSE)
    assert second.init(1).type == MessageType.READY
    assert ex.status()["counters"]["refused_inits"] == 1


def test_busy_without_any_worker(ex: Exchange) -> None:
    ex.start()
    code, text = error_of(ex.client().init(1))
    assert code == ErrorCode.BUSY and "no live worker" in text


def test_max_sessions_per_worker_caps_capacity(ex: Exchange) -> None:
    ex.start(max_sessions_per_worker=1)
    ex.worker("w", capacity=100)
    assert ex.status()["workers"][0]["capacity"] == 1
    assert ex.client().init(1).type == MessageType.READY
    assert error_of(ex.client().init(1))[0] == ErrorCode.BUSY


def test_busy_below_memory_threshold(ex: Exchange) -> None:
    ex.start(min_free_memory_mib=1 << 40)  # more memory than any machine has
    ex.worker("w")
    code, text = error_of(ex.client().init(1))
    assert code == ErrorCode.BUSY and text.startswith("memory:") and "MiB" in text


def test_memory_refusal_lifts_when_memory_frees(ex: Exchange) -> None:
    available = [100 << 20]
    ex.start(memory=lambda: available[0], min_free_memory_mib=256)
    ex.worker("w")
    client = ex.client()
    code, text = error_of(client.init(1))
    assert code == ErrorCode.BUSY and "100 MiB" in text and "256" in text
    available[0] = 300 << 20
    assert client.init(1).type == MessageType.READY


# ------------------------------------------------------------- bad requests


def header(mtype: int, *, version: int = 1, flags: int = 0, n: int = 1, t: int = 0) -> bytes:
    return HEADER.pack(MAGIC, version, mtype, flags, 77, 0, n, t, 0)


def test_malformed_requests_answered_and_others_still_served(ex: Exchange) -> None:
    ex.start()
    ex.worker("w", number=5)
    good, bad = ex.client(), ex.client()
    good.init(1)
    cases: list[tuple[list[bytes], int, str]] = [
        ([b"RLXX" + header(3)[4:]], ErrorCode.MALFORMED, "header.magic"),
        ([header(3)[:20]], ErrorCode.MALFORMED, "header: expected 32 bytes"),
        ([b""], ErrorCode.MALFORMED, "header"),
        ([header(3, t=1)], ErrorCode.MALFORMED, "frames: expected 3 frames, got 1"),
        ([header(9), b"extra"], ErrorCode.MALFORMED, "frames: expected 1 frames"),
        ([header(3, flags=0x8)], ErrorCode.MALFORMED, "header.flags"),
        ([header(3, n=0)], ErrorCode.MALFORMED, "header.session_count"),
        ([header(3, n=5000)], ErrorCode.TOO_LARGE, "header.session_count"),
        ([header(3, t=65)], ErrorCode.TOO_LARGE, "header.tensor_count"),
        ([header(42)], ErrorCode.MALFORMED, "header.type"),
        ([header(4)], ErrorCode.UNKNOWN_TYPE, "got action"),
        ([header(2)], ErrorCode.UNKNOWN_TYPE, "got ready"),
    ]
    for frames, code, words in cases:
        bad.send_raw(frames)
        reply = bad.recv()
        got, text = error_of(reply)
        assert (got, words in text) == (code, True), (frames, text)
        if len(frames[0]) >= 16:
            assert reply.sequence == 77  # echoed whenever frame 0 holds its bytes
        assert int(good.update().tensors[4][0]) == 5  # the good client is still served
    errors = ex.status()["counters"]["errors"]
    assert errors["MALFORMED"] == 8 and errors["UNKNOWN_TYPE"] == 2 and errors["TOO_LARGE"] == 2


def test_unsupported_version_lists_versions(ex: Exchange) -> None:
    ex.start()
    client = ex.client()
    client.send_raw([header(1, version=2)])
    reply = client.recv()
    code, text, versions = messages.read_error(reply)
    assert code == ErrorCode.UNSUPPORTED_VERSION and versions == (1,) and reply.version == 1
    assert reply.sequence == 77
    client.send_raw([header(1, version=0)])  # 0 is not spoken either
    code, text, versions = messages.read_error(client.recv())
    assert code == ErrorCode.UNSUPPORTED_VERSION and "header.version" in text
    assert versions == (1,)


def test_oversized_message_too_large(ex: Exchange) -> None:
    ex.start(max_message_bytes=1024)
    ex.worker("w")
    client = ex.client()
    client.init(1)
    # every frame fits ZeroMQ's MAXMSGSIZE, the whole message does not
    many = client.update_msg(state=np.zeros((1, 120), np.float64))
    client.send(many)
    reply = client.recv()
    code, text = error_of(reply)
    assert code == ErrorCode.TOO_LARGE and "1024" in text and reply.sequence == many.sequence
    assert client.update().type == MessageType.ACTION  # a small one still goes through
    # a frame at MAXMSGSIZE (twice the limit) is refused by the broker's decoder
    at = ex.client()
    at.send_raw([header(1), b"x" * 2048])
    assert error_of(at.recv())[0] == ErrorCode.TOO_LARGE
    # one byte above MAXMSGSIZE: ZeroMQ drops that peer, the broker carries on
    rogue = ex.client()
    rogue.send_raw([header(1), b"x" * 2049])
    rogue.nothing(0.2)
    assert client.update().type == MessageType.ACTION
    assert ex.status()["counters"]["errors"] == {"TOO_LARGE": 2}


def test_unknown_session_and_foreign_block(ex: Exchange) -> None:
    ex.start()
    ex.worker("w", number=2)
    owner, thief = ex.client(), ex.client()
    owner.init(2)
    thief.sid, thief.n = owner.sid, 2  # someone else's block id
    code, text = error_of(thief.update())
    assert code == ErrorCode.UNKNOWN_SESSION
    thief.sid, thief.n = owner.sid, 1  # right id, wrong count
    assert error_of(thief.update())[0] == ErrorCode.UNKNOWN_SESSION
    assert error_of(thief.simple(MessageType.CLOSE))[0] == ErrorCode.UNKNOWN_SESSION
    thief.sid = 12345
    assert error_of(thief.simple(MessageType.RESET))[0] == ErrorCode.UNKNOWN_SESSION
    assert int(owner.update().tensors[4][1]) == 2  # the owner keeps its block
    assert ex.status()["sessions"]["blocks"] == 1


def test_duplicate_sequence_in_flight_refused(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", auto=False)
    client = ex.client()
    client.init(1)
    msg = client.update_msg()
    client.send(msg)
    worker.expect(Command.REQUEST)
    client.send(msg)
    reply = client.recv()
    code, text = error_of(reply)
    assert (code, reply.sequence) == (ErrorCode.MALFORMED, msg.sequence)
    assert text == f"header.sequence: expected a sequence not in flight, got {msg.sequence}"


# ------------------------------------------------------------- re-homing


def test_worker_timeout_rehomes_block_and_resends_in_flight(ex: Exchange) -> None:
    ex.start()
    wa = ex.worker("w-a", auto=False)
    wb = ex.worker("w-b", number=9)
    client = ex.client()
    client.init(2)
    assert body(wa.expect(Command.ASSIGN))["session_id"] == client.sid
    request = client.update_msg()
    client.send(request)
    req = wa.expect(Command.REQUEST)
    wa.silent.set()  # w-a hangs with the request in flight
    assign = body(wb.expect(Command.ASSIGN))
    assert assign == {"session_id": client.sid, "count": 2, "exploit": False, "restart": True}
    resent = wb.expect(Command.REQUEST)
    assert resent[1:] == req[1:]  # the same client identity and RLX frames
    reply = client.recv()
    assert reply.sequence == request.sequence and reply.flags & Flag.RESTART
    assert list(reply.tensors[4]) == [9, 9]
    assert client.update().type == MessageType.ACTION  # served by w-b from now on
    status = ex.wait_for(lambda s: [w["name"] for w in s["workers"]] == ["w-b"])
    assert status["counters"]["rehomed_blocks"] == 1
    assert status["workers"][0]["sessions"] == 2


def test_no_live_worker_answers_in_flight_busy_restart(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", auto=False)
    client = ex.client()
    client.init(1)
    request = client.update_msg()
    client.send(request)
    worker.expect(Command.REQUEST)
    worker.silent.set()
    reply = client.recv()
    code, _ = error_of(reply)
    assert code == ErrorCode.BUSY and reply.flags & Flag.RESTART
    assert reply.sequence == request.sequence
    assert error_of(client.update())[0] == ErrorCode.UNKNOWN_SESSION  # the block is forgotten
    assert ex.status()["counters"]["lost_blocks"] == 1


def test_bye_rehomes_at_once(ex: Exchange) -> None:
    ex.start(heartbeat_interval=5.0)  # a timeout cannot explain what follows
    wa = ex.worker("w-a")
    wb = ex.worker("w-b", number=4)
    client = ex.client()
    client.init(1)
    wa.expect(Command.ASSIGN)
    wa.send(link.control(Command.BYE))
    assert body(wb.expect(Command.ASSIGN, 1.0))["restart"] is True
    assert int(client.update().tensors[4][0]) == 4
    ex.wait_for(lambda s: [w["name"] for w in s["workers"]] == ["w-b"])


def test_register_again_rehomes_old_blocks(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", number=3)
    client = ex.client()
    client.init(2)
    assert body(worker.expect(Command.ASSIGN))["restart"] is False
    worker.send(worker.reg_frames())  # the worker lost its sessions and registers again
    assign = body(worker.expect(Command.ASSIGN))
    assert assign["restart"] is True and assign["session_id"] == client.sid
    assert list(client.update().tensors[4]) == [3, 3]


def test_resume_from_new_connection(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w")
    old = ex.client()
    old.init(2)
    worker.expect(Command.ASSIGN)
    new = ex.client()
    new.n = 2
    ready = new.init(2, session_id=old.sid)
    assert (ready.type, ready.session_id, ready.session_count) == (MessageType.READY, old.sid, 2)
    assert body(worker.expect(Command.RESTART)) == {"session_id": old.sid}
    assert new.update().type == MessageType.ACTION
    assert error_of(old.update())[0] == ErrorCode.UNKNOWN_SESSION  # bound to the new connection
    # an unknown block (or a wrong count) is a new init
    other = ex.client()
    fresh = other.init(1, session_id=old.sid)
    assert fresh.type == MessageType.READY and fresh.session_id != old.sid
    assert ex.status()["counters"]["resumed_blocks"] == 1


def test_replies_to_the_old_connection_are_stale_after_resume(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", auto=False)
    old = ex.client()
    old.init(1)
    worker.expect(Command.ASSIGN)
    old.send(old.update_msg())
    stale_req = worker.expect(Command.REQUEST)
    new = ex.client()
    new.init(1, session_id=old.sid)
    worker.expect(Command.RESTART)
    new.seq = old.seq - 1  # the new connection reuses the in-flight sequence number
    new.send(new.update_msg())
    fresh_req = worker.expect(Command.REQUEST)
    assert fresh_req[1] != stale_req[1]
    worker.send(worker.answer(stale_req))  # the old request's reply, late
    worker.send(worker.answer(fresh_req))
    assert new.recv().type == MessageType.ACTION
    new.nothing(0.1)
    old.nothing(0.1)
    assert ex.status()["counters"]["stale_replies"] == 1


def test_worker_reconnecting_under_its_name_takes_over(ex: Exchange) -> None:
    ex.start()
    first = ex.worker("w", number=1)
    client = ex.client()
    client.init(1)
    first.expect(Command.ASSIGN)
    first.silent.set()  # its old connection stays open: the new one must win the name
    second = ex.worker("w", number=2, wait=False)
    assign = body(second.expect(Command.ASSIGN))
    assert assign["restart"] is True and assign["session_id"] == client.sid
    reply = client.update()
    assert int(reply.tensors[4][0]) == 2 and reply.flags & Flag.RESTART


def test_a_second_live_worker_under_the_same_name_is_refused(ex: Exchange) -> None:
    ex.start()
    first = ex.worker("w@host-a", number=1, instance="aaaa")
    client = ex.client()
    client.init(1)
    first.expect(Command.ASSIGN)
    twin = ex.worker("w@host-a", number=2, instance="bbbb", wait=False)
    reason = body(twin.expect(Command.REFUSE))["reason"]
    assert "'w@host-a' is held by a live worker" in reason and "instance aaaa" in reason
    status = ex.status()
    assert [(w["name"], w["instance"]) for w in status["workers"]] == [("w@host-a", "aaaa")]
    assert status["counters"]["refused_workers"] == 1
    assert int(client.update().tensors[4][0]) == 1  # the holder keeps its block, no restart
    # the holder dies (declared dead after heartbeat_interval 0.1 x liveness 3): the twin's
    # next registration is accepted under the name
    first.silent.set()
    ex.wait_for(lambda s: not s["workers"])
    twin.send(twin.reg_frames())
    ex.wait_for(
        lambda s: [(w["name"], w["instance"]) for w in s["workers"]] == [("w@host-a", "bbbb")]
    )
    assert ex.status()["counters"]["refused_workers"] == 1


# ------------------------------------------------------- idle, move, admin


def test_idle_block_released(ex: Exchange) -> None:
    ex.start(session_idle_timeout=0.3)
    worker = ex.worker("w")
    client = ex.client()
    client.init(1)
    worker.expect(Command.ASSIGN)
    assert body(worker.expect(Command.RELEASE)) == {"session_id": client.sid}
    assert error_of(client.update())[0] == ErrorCode.UNKNOWN_SESSION
    assert ex.status()["counters"]["idle_released"] == 1


def test_drain_moves_blocks_at_episode_boundary(ex: Exchange) -> None:
    ex.start()
    wa = ex.worker("w-a", number=1)
    client = ex.client()
    client.init(1)
    wa.expect(Command.ASSIGN)
    wb = ex.worker("w-b", number=2)
    assert ex.admin({"command": "drain", "worker": "w-a"}) == {"ok": True}
    assert int(client.update().tensors[4][0]) == 1  # mid-episode: stays
    wa.nothing(Command.RELEASE, 0.1)
    assert int(client.update(terminal=True).tensors[4][0]) == 1  # the boundary itself
    assert body(wa.expect(Command.RELEASE)) == {"session_id": client.sid}
    assign = body(wb.expect(Command.ASSIGN))
    assert assign == {"session_id": client.sid, "count": 1, "exploit": False, "restart": False}
    assert int(client.update().tensors[4][0]) == 2  # the next episode runs on w-b
    newcomer = ex.client()
    newcomer.init(1)
    assert body(wb.expect(Command.ASSIGN))["session_id"] == newcomer.sid  # never to w-a
    status = ex.status()
    assert [w["draining"] for w in status["workers"]] == [True, False]
    assert status["counters"]["moved_blocks"] == 1


def test_rebalance_after_timeout_at_reset(ex: Exchange) -> None:
    ex.start(rebalance_timeout=0.2)
    wa = ex.worker("w-a", 4, number=1)
    one, two = ex.client(), ex.client()
    one.init(1)
    two.init(1)
    wb = ex.worker("w-b", 4, number=2)  # arrives later: a holds 2/4, b 0/4
    assert int(one.simple(MessageType.RESET).session_id) == one.sid  # too young to move
    wa.nothing(Command.RELEASE, 0.25)
    assert int(one.update().tensors[4][0]) == 1  # old enough, but mid-episode
    assert one.simple(MessageType.RESET).type == MessageType.DONE
    assert body(wa.expect(Command.RELEASE))["session_id"] == one.sid
    assert body(wb.expect(Command.ASSIGN))["restart"] is False
    assert int(one.update().tensors[4][0]) == 2
    # the other block now sees 1/4 against 1/4: no gain, it stays
    assert two.simple(MessageType.RESET).type == MessageType.DONE
    assert int(two.update().tensors[4][0]) == 1
    assert ex.status()["counters"]["moved_blocks"] == 1


def test_admin_status_fields_and_rates(ex: Exchange) -> None:
    ex.start()
    ex.worker("w", capacity=6)
    client = ex.client()
    client.init(4)
    for _ in range(5):
        client.update()
    status = ex.status()
    for key in ("uptime_s", "workers", "sessions", "rates", "queues", "counters"):
        assert key in status
    (worker,) = status["workers"]
    assert worker["name"] == "w" and worker["pid"] == os.getpid()
    assert (worker["alive"], worker["draining"]) == (True, False)
    assert (worker["capacity"], worker["sessions"], worker["blocks"]) == (6, 4, 1)
    assert worker["in_flight"] == 0 and 0 <= worker["last_seen_s"] < 1
    assert worker["stats"] == {"sessions": 0}
    assert status["sessions"] == {"blocks": 1, "sessions": 4}
    assert status["rates"]["steps_per_s"] > 0 and status["rates"]["messages_per_s"] > 0
    assert status["queues"] == {"in_flight": 0, "dropped_replies": 0}
    counters = status["counters"]
    assert counters["requests"] == 6 and counters["replies"] == 6
    assert counters["forwarded"] == 5 and counters["refused_inits"] == 0
    assert counters["rehomed_blocks"] == 0 and counters["errors"] == {}


def test_admin_drop_bad_json_and_unknown_names(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w")
    client = ex.client()
    client.init(3)
    worker.expect(Command.ASSIGN)
    for request in (
        b"{not json",
        b"[]",
        {"command": "reboot"},
        {"command": "drain", "worker": "nobody"},
        {"command": "drop", "session": client.sid + 3},
        {"command": "drop", "session": "x"},
    ):
        reply = ex.admin(request)
        assert reply["ok"] is False and reply["error"], request
    (two_frames,) = ex.admin_raw([b"{}", b"{}"])
    assert json.loads(two_frames)["ok"] is False
    # a REQ socket's empty delimiter is kept on the reply
    assert ex.admin_raw([b"", b'{"command":"status"}'])[0] == b""
    assert ex.admin({"command": "drop", "session": client.sid + 2}) == {"ok": True}
    assert body(worker.expect(Command.RELEASE)) == {"session_id": client.sid}
    assert error_of(client.update())[0] == ErrorCode.UNKNOWN_SESSION
    assert ex.status()["sessions"]["blocks"] == 0


def test_garbage_from_workers_dropped_and_service_continues(ex: Exchange) -> None:
    ex.start()
    worker = ex.worker("w", number=6)
    client = ex.client()
    client.init(1)
    for frames in (
        [b"NOPE", b"{}"],
        [Command.HEARTBEAT.value, b"not json"],
        [Command.HEARTBEAT.value],
        [Command.REGISTER.value, b'{"worker": "w"}'],
        [
            Command.REGISTER.value,
            json.dumps(
                {"worker": "w", "instance": "1", "pid": 1, "capacity": 4, "link_version": 99}
            ).encode(),
        ],  # fmt: skip
        [Command.ASSIGN.value, b"{}"],
        [Command.REPLY.value],
        [Command.REPLY.value, b"client", b"short header"],
        [Command.REPLY.value, b"nobody", *encode(messages.simple(MessageType.DONE, 1, 1))],
    ):
        worker.send(frames)
    stranger = FakeWorker(ex.ctx, ex.config.broker.backend, "stranger", register=False)  # type: ignore[union-attr]
    ex.workers.append(stranger)
    stranger.send(link.forward(Command.REPLY, b"x", encode(messages.simple(MessageType.DONE))))
    # the stranger's frames and the worker's may come in either order: wait for both
    status = ex.wait_for(
        lambda s: s["counters"]["bad_link"] >= 8 and s["counters"]["stale_replies"] >= 1
    )
    assert status["counters"]["stale_replies"] == 1
    assert [w["name"] for w in status["workers"]] == ["w"]
    assert int(client.update().tensors[4][0]) == 6


# --------------------------------------------------------------- daemon


def test_daemon_serves_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    mapping = broker_mapping()
    del mapping["log_level"]
    broker = mapping["broker"]
    lines = [
        "version: 1",
        "environment: {run: bandit}",
        f"algorithm: {{path: {LINEAR_POLICY_PATH}}}",
    ]
    lines.append("broker:")
    lines += [f"  {key}: {value}" for key, value in broker.items()]
    config = tmp_path / "app.yaml"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaax_zmq.broker", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    try:
        admin = ctx.socket(zmq.DEALER)
        admin.setsockopt(zmq.LINGER, 0)
        admin.connect(broker["admin"])
        admin.send(b'{"command": "status"}')
        assert admin.poll(10_000), "the daemon never answered"
        assert json.loads(admin.recv())["ok"] is True
        client = FakeClient(ctx, broker["frontend"])
        assert error_of(client.init(1))[0] == ErrorCode.BUSY  # serving; no worker yet
        client.sock.close(0)
        admin.close(0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert broker["frontend"] in err  # the bound endpoints are logged
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ctx.term()


def test_daemon_bad_config_exits_nonzero(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(
        f"version: 1\nenvironment: {{run: bandit}}\nalgorithm: {{path: {LINEAR_POLICY_PATH}}}\n"
        "broker: {heartbeat_interval: -1}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "relaax_zmq.broker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "heartbeat_interval" in result.stderr
