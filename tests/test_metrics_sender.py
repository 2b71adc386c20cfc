"""Metrics senders and the wire format: one ZeroMQ message per batch, filters, drops, checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from relaax_zmq.metrics import (
    BatchError,
    MetricsSender,
    SessionMetricsSink,
    decode_batch,
    encode_batch,
    names,
)
from relaax_zmq.metrics.events import histogram_value
from relaax_zmq.metrics.filters import MetricFilter
from relaax_zmq.protocol import Message, MessageType, Role, encode, messages
from relaax_zmq.runtime.ports import free_port


@pytest.fixture
def pull() -> Iterator[tuple[zmq.Socket, str]]:
    """A bare PULL socket standing in for the collector, and its endpoint."""
    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.linger = 0
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(0)


def receive_all(sock: zmq.Socket, first_timeout: float = 5.0, quiet: float = 0.3) -> list[list]:
    """Every message that arrives: wait for the first, then until ``quiet`` passes without one."""
    out = []
    timeout = first_timeout
    while sock.poll(int(timeout * 1000)):
        out.append(sock.recv_multipart(copy=False))
        timeout = quiet
    return out


def test_a_batch_of_many_metrics_is_one_zeromq_message(pull):
    sock, endpoint = pull
    with MetricsSender(endpoint, "worker-0") as sender:
        for i in range(50):
            sender.scalar(f"scalar_{i}", i * 0.5)
        for i in range(5):
            sender.histogram(f"hist_{i}", np.arange(10 * (i + 1)))
        sender.histogram("hist_0", [100.0, 200.0])  # accumulates
        sender.scalar("scalar_0", -1.0)  # last value wins
        assert len(sender) == 55
        assert sender.flush(step=7) == 1
        assert len(sender) == 0
        received = receive_all(sock)
    assert len(received) == 1
    frames = received[0]
    header = json.loads(frames[0].bytes)
    assert header["version"] == 1 and header["source"] == "worker-0" and header["step"] == 7
    assert abs(header["time"] - time.time()) < 60
    batch = decode_batch(frames)
    assert batch.header.kind == "worker" and batch.session_id == 0
    assert len(batch.scalars) == 50 and batch.scalars["scalar_0"] == -1.0
    assert batch.scalars["scalar_49"] == 24.5
    assert len(batch.histograms) == 5
    assert batch.histograms["hist_0"].tolist() == [*range(10), 100.0, 200.0]
    size = sum(len(f) for f in frames)
    assert decode_batch(frames, max_bytes=size).header.step == 7  # at the limit: read
    with pytest.raises(BatchError, match=f"expected at most {size - 1} bytes, got {size}"):
        decode_batch(frames, max_bytes=size - 1)
    assert batch.histograms["hist_4"].size == 50
    assert sender.stats()["sent"] == 1 and sender.stats()["metrics"] == 55


def test_flush_sends_one_batch_per_step_and_counts_its_own_steps(pull):
    sock, endpoint = pull
    with MetricsSender(endpoint, "ps-1") as sender:
        sender.scalar("a", 1.0)
        sender.scalar("b", 2.0, step=3)
        sender.scalar("c", 3.0, step=9)
        assert sender.flush(step=3) == 2  # "a" joins step 3
        sender.scalar("a", 4.0)
        assert sender.flush() == 1  # the sender's counter: second flush
        assert sender.flush() == 0  # nothing buffered, nothing sent
        batches = [decode_batch(f) for f in receive_all(sock)]
    got = sorted((b.header.step, sorted(b.scalars.items())) for b in batches)
    assert got == [(1, [("a", 4.0)]), (3, [("a", 1.0), ("b", 2.0)]), (9, [("c", 3.0)])]
    assert sender.flush_count == 3


def test_sender_filters_by_name_and_by_tag(pull):
    sock, endpoint = pull
    sender = MetricsSender(
        endpoint,
        "worker-2",
        enabled=["loss", "entropy", "actions", "worker/q_value", "client/epsilon"],
        disabled=["worker/entropy"],
    )
    try:
        sender.scalar("loss", 1.0)
        sender.scalar("entropy", 2.0)  # disabled for workers
        sender.scalar("q_value", 3.0)  # enabled for workers
        sender.scalar("epsilon", 4.0)  # enabled for clients only
        sender.scalar("other", 5.0)  # not enabled
        sender.histogram("actions", [1, 2])
        sender.histogram("weights", [1, 2])  # not enabled
        assert sender.stats()["filtered"] == 4
        assert sender.flush() == 1
        # forwarded metrics are filtered by the source's kind
        assert sender.send({"epsilon": 0.1, "q_value": 7.0}, source="client-5")
        assert not sender.send({"other": 1.0})  # nothing left: nothing sent
        batches = [decode_batch(f) for f in receive_all(sock)]
    finally:
        sender.close()
    assert sorted(batches[0].scalars) == ["loss", "q_value"]
    assert list(batches[0].histograms) == ["actions"]
    assert batches[1].header.source == "client-5" and batches[1].scalars == {"epsilon": 0.1}
    assert len(batches) == 2 and sender.stats()["filtered"] == 6


def test_sender_without_collector_never_blocks_and_counts_drops():
    sender = MetricsSender(f"tcp://127.0.0.1:{free_port()}", "worker-0", hwm=5)
    try:
        start = time.monotonic()
        for step in range(200):
            sender.scalar(names.POLICY_LOSS, 0.5, step=step)
            sender.histogram(names.ACTIONS, np.arange(100))
            sender.flush()
        elapsed = time.monotonic() - start
        stats = sender.stats()
    finally:
        sender.close(linger=0)
    assert elapsed < 2.0
    assert stats["sent"] + stats["dropped"] == 200
    assert stats["dropped"] >= 150  # at most a few hwm's worth were queued
    assert stats["dropped_metrics"] == 2 * stats["dropped"]
    assert stats["pending"] == 0


def test_batches_queued_before_the_collector_binds_still_arrive():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with MetricsSender(endpoint, "worker-0", hwm=100) as sender:
        for step in range(3):
            sender.scalar("early", float(step), step=step)
            sender.flush()
        sock = zmq.Context.instance().socket(zmq.PULL)
        try:
            sock.bind(endpoint)
            batches = [decode_batch(f) for f in receive_all(sock)]
        finally:
            sock.close(0)
    assert [b.scalars["early"] for b in batches] == [0.0, 1.0, 2.0]
    assert sender.stats()["dropped"] == 0


def test_oversized_and_unencodable_batches_are_dropped_not_raised(pull):
    _, endpoint = pull
    with MetricsSender(endpoint, "worker-0", max_message_bytes=4096) as sender:
        sender.histogram("big", np.zeros(10_000))
        assert sender.flush() == 0
        assert sender.stats()["dropped"] == 1
        sender.scalar("small", 1.0)
        assert sender.flush() == 1
    with pytest.raises(ValueError):
        sender.scalar("bad\nname", 1.0)
    with pytest.raises(ValueError):
        sender.scalar("", 1.0)
    with pytest.raises(ValueError):
        MetricsSender(endpoint, "no spaces allowed")
    sender.scalar("after_close", 1.0)
    assert sender.flush() == 0 and sender.stats()["dropped"] == 2


def test_session_metrics_sink_forwards_each_client_message_as_a_batch(pull):
    sock, endpoint = pull
    with MetricsSender(endpoint, "worker-3", disabled=["client/secret"]) as sender:
        sink = SessionMetricsSink(sender)
        sink(42, {names.EPISODE_REWARD: 3.5, "secret": 1.0}, {names.ACTIONS: np.array([0.0, 1.0])})
        sink(43, {names.EPISODE_REWARD: 1.5}, {})
        stepped = SessionMetricsSink(sender, step=lambda: 1000)
        stepped(44, {names.EPISODE_LENGTH: 20.0}, {})
        batches = [decode_batch(f) for f in receive_all(sock)]
    assert [b.header.source for b in batches] == ["client-42", "client-43", "client-44"]
    assert [b.session_id for b in batches] == [42, 43, 44]
    assert [b.header.step for b in batches] == [None, None, 1000]
    assert batches[0].scalars == {"episode_reward": 3.5}
    assert batches[0].histograms["actions"].tolist() == [0.0, 1.0]


def rlx(scalars=None, histograms=None) -> list:
    return encode(messages.metrics(0, scalars, histograms))


def header(**fields) -> bytes:
    return json.dumps(
        {"version": 1, "source": "worker-0", "step": 1, "time": 1.0, **fields}
    ).encode()


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"only one frame"], "frames"),
        ([b"\xff\xfe", *rlx({"a": 1.0})], "header"),
        ([b"{not json", *rlx({"a": 1.0})], "header"),
        ([b"[1, 2]", *rlx({"a": 1.0})], "header"),
        ([header(version=2), *rlx({"a": 1.0})], "header"),
        ([header(source=""), *rlx({"a": 1.0})], "header"),
        ([header(source="a b"), *rlx({"a": 1.0})], "header"),
        ([header(step=-1), *rlx({"a": 1.0})], "header"),
        ([header(step=1.5), *rlx({"a": 1.0})], "header"),
        ([header(step=True), *rlx({"a": 1.0})], "header"),
        ([header(time="now"), *rlx({"a": 1.0})], "header"),
        ([b" " * 5000, *rlx({"a": 1.0})], "header"),
        ([header(), b"garbage"], "rlx"),
        ([header(), *rlx({"a": 1.0})[:-1]], "rlx"),
        ([header(), *encode(messages.simple(MessageType.HEARTBEAT))], "rlx"),
    ],
)
def test_decode_batch_refuses_malformed_batches(frames, reason):
    with pytest.raises(BatchError) as info:
        decode_batch(frames)
    assert info.value.reason == reason


def mismatched(names_blob: bytes, values: int) -> list:
    tensors = {
        Role.METRIC_NAMES: np.frombuffer(names_blob, np.uint8),
        Role.METRIC_VALUES: np.zeros(values),
    }
    return encode(Message(MessageType.METRICS, tensors=tensors))


@pytest.mark.parametrize(
    "body",
    [
        mismatched(b"a\nb\nc", 2),
        mismatched(b"a\n\nc", 3),  # an empty name
        encode(
            Message(
                MessageType.METRICS,
                tensors={
                    Role.HISTOGRAM_NAMES: np.frombuffer(b"h", np.uint8),
                    Role.HISTOGRAM_LENGTHS: np.array([5], np.uint32),
                    Role.HISTOGRAM_VALUES: np.zeros(4),
                },
            )
        ),
    ],
)
def test_decode_batch_refuses_count_mismatches(body):
    with pytest.raises(BatchError) as info:
        decode_batch([header(), *body])
    assert info.value.reason == "metrics"


def test_encode_batch_round_trips_and_allows_a_null_step():
    frames = encode_batch("client-9", None, {"a": 2.5}, {"h": [1, 2, 3]}, time=5.0, session_id=9)
    batch = decode_batch(frames)
    assert batch.header.step is None and batch.header.time == 5.0 and batch.session_id == 9
    assert batch.scalars == {"a": 2.5} and batch.histograms["h"].tolist() == [1.0, 2.0, 3.0]


def test_metric_filter_entries_match_names_and_tags_and_disabled_wins():
    f = MetricFilter(enabled=["a", "worker/b", "c"], disabled=["client/a", "c"])
    assert f.allows("a", "worker") and not f.allows("a", "client")
    assert f.allows("b", "worker") and not f.allows("b", "ps")
    assert not f.allows("c", "worker") and not f.allows("d", "worker")
    assert MetricFilter().allows("anything", "ps") and MetricFilter().passes_all


def test_histogram_summary_holds_count_min_max_sum_and_buckets():
    values = np.array([*range(100), np.nan, np.inf])  # non-finite values are left out
    proto = histogram_value("h", values).histo
    assert (proto.num, proto.min, proto.max, proto.sum) == (100, 0, 99, 4950)
    assert proto.sum_squares == sum(i * i for i in range(100))
    assert sum(proto.bucket) == 100 and len(proto.bucket) == len(proto.bucket_limit)
    assert proto.bucket_limit[0] == 0 and proto.bucket_limit[-1] == 99
    assert histogram_value("h", np.array([np.nan])) is None
    same = histogram_value("h", np.full(7, 3.0)).histo
    assert same.num == 7 and same.min == same.max == 3.0 and sum(same.bucket) == 7


def test_builtin_names_are_unique_and_listed():
    constants = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(names.BUILTIN)
    for required in (
        "episode_reward",
        "episode_length",
        "steps_per_second",
        "policy_loss",
        "value_loss",
        "entropy",
        "gradient_norm",
        "weight_norm",
        "staleness",
        "action_latency_client_ms",
        "action_latency_server_ms",
    ):
        assert required in names.SCALARS
    assert set(names.SCALARS) | set(names.HISTOGRAMS) == set(names.BUILTIN)
