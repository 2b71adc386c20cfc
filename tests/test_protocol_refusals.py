"""Error replies as a client sees them: a real broker and a real worker (threads, tcp loopback),
a raw DEALER client. Every refusal echoes the request's sequence (and block) whenever frame 0
holds their bytes, answers the code docs/protocol.md gives for it, in the spec's order of checks
(the broker's envelope checks before the worker's payload checks), with a text
``field: expected X, got Y`` free of Python notation."""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from relaax_zmq.broker import Broker
from relaax_zmq.config import parse_config
from relaax_zmq.protocol import ErrorCode, Message, MessageType, decode, encode, messages
from relaax_zmq.protocol.header import LAYOUT
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing import LINEAR_POLICY_PATH
from relaax_zmq.worker import Worker

WAIT = 5.0
SEQ = 0x1122334455667788
MAX_BYTES = 4096
PYTHON_NOTATION = re.compile(r"\bb'|\bb\"|\\x[0-9a-f]{2}")


class Client:
    """A DEALER speaking raw RLX to the broker's frontend."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def ask(self, frames: list[Any]) -> Message:
        self.sock.send_multipart(frames)
        assert self.sock.poll(int(WAIT * 1000)), "no reply"
        return decode(self.sock.recv_multipart())

    def block(self, n: int) -> int:
        ready = self.ask(encode(messages.init(n, sequence=1)))
        assert ready.type == MessageType.READY, messages.read_error(ready)
        return ready.session_id


@pytest.fixture(scope="module")
def frontend() -> Iterator[tuple[zmq.Context, str]]:
    config = parse_config(
        {
            "version": 1,
            "log_level": "WARNING",
            "environment": {"run": "bandit"},
            "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
            "broker": {
                **{n: f"tcp://127.0.0.1:{free_port()}" for n in ("frontend", "backend", "admin")},
                "heartbeat_interval": 0.1,
                "min_free_memory_mib": 0,
                "max_message_bytes": MAX_BYTES,
            },
            "workers": {"max_sessions": 32},
        }
    )
    ctx = zmq.Context()
    broker, worker = Broker(config, context=ctx), Worker(config, name="w")
    stops = [StopFlag(), StopFlag()]
    threads = [
        threading.Thread(target=broker.run, args=(stops[0],), daemon=True),
        threading.Thread(target=worker.run, args=(stops[1],), daemon=True),
    ]
    for thread in threads:
        thread.start()
    assert broker.bound.wait(WAIT)
    client = Client(ctx, config.broker.frontend)
    deadline = time.monotonic() + WAIT
    while client.ask(encode(messages.init(1, sequence=1))).type != MessageType.READY:
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.05)
    client.sock.close(0)
    try:
        yield ctx, config.broker.frontend
    finally:
        for stop, thread in zip(reversed(stops), reversed(threads), strict=True):
            stop.set()
            thread.join(5)
        ctx.term()


@pytest.fixture
def client(frontend: tuple[zmq.Context, str]) -> Iterator[Client]:
    c = Client(*frontend)
    yield c
    c.sock.close(0)


def head(mtype: int, *, magic: bytes = b"RLXP", version: int = 1, sid: int = 7, n: int = 3,
         t: int = 0) -> bytes:  # fmt: skip
    return LAYOUT.pack(magic, version, mtype, 0, SEQ, sid, n, t, 0)


def refused(reply: Message) -> tuple[int, str]:
    assert reply.type == MessageType.ERROR, f"expected an error, got {reply.type}"
    code, text, _ = messages.read_error(reply)
    assert not PYTHON_NOTATION.search(text), text
    return code, text


# (frames, code, text start, the (sequence, session_id, session_count) echoed)
BROKER_CASES = [
    ([head(3, magic=b"RLXQ")], ErrorCode.MALFORMED,
     "header.magic: expected 52 4c 58 50 (RLXP), got 52 4c 58 51", (SEQ, 7, 3)),
    ([head(3)[:20]], ErrorCode.MALFORMED, "header: expected 32 bytes, got 20", (SEQ, 0, 0)),
    ([head(3) + b"\0"], ErrorCode.MALFORMED, "header: expected 32 bytes, got 33", (SEQ, 7, 3)),
    ([b"RLX"], ErrorCode.MALFORMED, "header: expected 32 bytes, got 3", (0, 0, 0)),
    ([head(1, version=2)], ErrorCode.UNSUPPORTED_VERSION, "header.version", (SEQ, 7, 3)),
    ([head(3, n=5000)], ErrorCode.TOO_LARGE, "header.session_count: expected 1..4096, got 5000",
     (SEQ, 7, 0)),
    ([head(3, t=65)], ErrorCode.TOO_LARGE, "header.tensor_count: expected at most 64",
     (SEQ, 7, 3)),
    ([head(3, t=1)], ErrorCode.MALFORMED, "frames: expected 3 frames, got 1", (SEQ, 7, 3)),
    ([head(7, sid=0, n=0)], ErrorCode.MALFORMED, "header.session_count: expected 1..4096, got 0",
     (SEQ, 0, 0)),
    ([head(3, t=1), b"\0" * 40, b"x" * MAX_BYTES], ErrorCode.TOO_LARGE,
     f"message: expected at most {MAX_BYTES} bytes", (SEQ, 7, 3)),
    ([head(4)], ErrorCode.UNKNOWN_TYPE, "header.type: expected a request", (SEQ, 7, 3)),
    ([head(3, sid=12345)], ErrorCode.UNKNOWN_SESSION, "session 12345", (SEQ, 12345, 3)),
]  # fmt: skip


@pytest.mark.parametrize(("frames", "code", "start", "echo"), BROKER_CASES)
def test_the_broker_echoes_what_frame_0_holds(client, frames, code, start, echo) -> None:
    got = client.ask(frames)
    reply = refused(got)
    assert reply[0] == code and reply[1].startswith(start), reply
    assert (got.sequence, got.session_id, got.session_count) == echo


def test_metrics_for_no_session_are_malformed_not_an_unknown_session(client) -> None:
    """N = 0 is refused by every decoder for metrics (metrics belong to a block)."""
    reply = client.ask([head(MessageType.METRICS, sid=0, n=0)])
    assert refused(reply)[0] == ErrorCode.MALFORMED and reply.sequence == SEQ


def _update(sid: int, n: int, reward: np.ndarray) -> list[Any]:
    frames = encode(
        messages.update(sid, reward=np.zeros(n, np.float32), state=np.zeros((n, 4), np.float32))
    )
    table = bytearray(frames[1])
    table[2] = 7  # reward dtype: int32 (a float32 or float64 is required)
    frames[0] = frames[0][:8] + struct.pack("<Q", SEQ) + frames[0][16:]
    return [frames[0], bytes(table), reward.tobytes(), *frames[3:]]


def test_the_worker_echoes_a_payload_refusal(client) -> None:
    sid = client.block(3)
    reply = client.ask(_update(sid, 3, np.zeros(3, np.int32)))
    code, text = refused(reply)
    assert code == ErrorCode.MALFORMED
    assert text == "tensor[0].dtype: expected one of float32, float64 for reward, got int32"
    assert (reply.sequence, reply.session_id, reply.session_count) == (SEQ, sid, 3)


def test_an_unknown_session_is_reported_before_a_bad_payload(client) -> None:
    """The broker routes on the envelope: the worker, which decodes payloads, never sees it."""
    reply = client.ask(_update(424242, 3, np.zeros(3, np.int32)))
    assert refused(reply)[0] == ErrorCode.UNKNOWN_SESSION
    assert (reply.sequence, reply.session_id, reply.session_count) == (SEQ, 424242, 3)


def _metrics(sid: int, names: bytes, values: int, sequence: int) -> list[Any]:
    """A metrics message for a block of 2 whose names and values need not agree."""
    tensors = {5: np.frombuffer(names, np.uint8), 6: np.zeros(values)}
    return encode(Message(MessageType.METRICS, sequence=sequence, session_id=sid,
                          session_count=2, tensors=tensors))  # fmt: skip


def test_metrics_counts_that_disagree_are_malformed(client) -> None:
    sid = client.block(2)
    assert client.ask(_metrics(sid, b"a\nb", 2, 4)).type == MessageType.DONE
    reply = client.ask(_metrics(sid, b"a\nb", 1, 5))
    assert refused(reply) == (ErrorCode.MALFORMED, "metric_values: expected 2 values, got 1 values")
    assert (reply.sequence, reply.session_id, reply.session_count) == (5, sid, 2)
    reply = client.ask(_metrics(sid, b"a\n\nb", 3, 6))
    expected = "metric_names: expected non-empty names, got an empty name at index 1"
    assert refused(reply) == (ErrorCode.MALFORMED, expected)
