"""The parameter vector's partition and the parameter-server wire, without sockets."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps import shard_bounds, wire
from relaax_zmq.ps.partition import Slice

# -- partition ----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1000, 1001])
@pytest.mark.parametrize("shards", [1, 2, 3, 8])
def test_shards_cover_the_vector_contiguously_with_near_equal_sizes(count, shards) -> None:
    bounds = shard_bounds(count, shards)
    assert len(bounds) == shards
    assert bounds[0].offset == 0 and bounds[-1].stop == count
    for left, right in zip(bounds, bounds[1:], strict=False):
        assert left.stop == right.offset
    sizes = [b.count for b in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger slices come first


def test_partition_example_and_refusals() -> None:
    assert shard_bounds(10, 3) == [Slice(0, 4), Slice(4, 3), Slice(7, 3)]
    for count, shards in ((-1, 1), (5, 0), (5, True), (2.0, 1)):
        with pytest.raises(ValueError):
            shard_bounds(count, shards)  # type: ignore[arg-type]


# -- round trips --------------------------------------------------------------------------------

VALUES = np.arange(5, dtype=np.float32) - 2.5


def _shard_side(message: wire.ToShard) -> wire.ToShard:
    frames = wire.encode(message)
    return wire.decode_to_shard([bytes(memoryview(f)) for f in frames], message.shard)


def _worker_side(message: wire.ToWorker) -> wire.ToWorker:
    return wire.decode_to_worker([bytes(memoryview(f)) for f in wire.encode(message)])


def test_gradient_round_trip() -> None:
    sent = wire.Gradient(3, "wörker-1", 2**40, 123, 4, 17, VALUES)
    got = _shard_side(sent)
    assert isinstance(got, wire.Gradient)
    assert (got.shard, got.worker, got.base_version, got.steps, got.episodes, got.offset) == (
        3,
        "wörker-1",
        2**40,
        123,
        4,
        17,
    )
    assert got.values.dtype == np.float32 and np.array_equal(got.values, VALUES)
    assert not got.values.array().flags.writeable  # a view on the frame


def test_large_payloads_travel_in_chunks_of_4_mib_and_come_back_whole() -> None:
    count = 2 * wire.CHUNK_VALUES + 5
    values = np.arange(count, dtype=np.float32)
    frames = wire.encode(wire.Gradient(0, "w", 0, 1, 0, 0, values))
    assert [f.size for f in frames[1:]] == [wire.CHUNK_VALUES, wire.CHUNK_VALUES, 5]
    assert all(np.shares_memory(f, values) for f in frames[1:])  # views, no copies
    got = wire.decode_to_shard(frames, 0)
    assert isinstance(got, wire.Gradient) and len(got.values.chunks) == 3
    out = np.empty(count, np.float32)
    got.values.copy_into(out)
    np.testing.assert_array_equal(out, values)
    np.testing.assert_array_equal(got.values.array(), values)
    with pytest.raises(ProtocolError) as caught:
        wire.decode_to_shard(frames[:-1], 0)  # a chunk missing
    assert caught.value.field == "ps.gradient.frames"
    weights = wire.decode_to_worker(wire.encode(wire.Weights(0, 1, 2, 3, 4, 0, count, values)))
    assert isinstance(weights, wire.Weights) and weights.values == values


def test_hello_and_worker_heartbeat_round_trip() -> None:
    assert _shard_side(wire.Hello(1, "w", 9)) == wire.Hello(1, "w", 9)
    beat = wire.WorkerHeartbeat(0, "w0", 77, True, 3.5)
    assert _shard_side(beat) == beat
    no_score = _shard_side(wire.WorkerHeartbeat(0, "w0", 77, False))
    assert isinstance(no_score, wire.WorkerHeartbeat) and np.isnan(no_score.score)


def test_statistics_and_totals_round_trip_as_float64() -> None:
    delta = np.array([3.0, 1e-300, -2.5e12], np.float64)
    got = _shard_side(wire.Statistics(0, "w1", delta))
    assert isinstance(got, wire.Statistics) and got.worker == "w1"
    assert got.values.dtype == np.float64 and np.array_equal(got.values, delta)
    totals = _worker_side(wire.StatisticsTotals(0, 77, 12, delta))
    assert isinstance(totals, wire.StatisticsTotals)
    assert (totals.incarnation, totals.updates) == (77, 12)
    assert np.array_equal(totals.values, delta)


def test_only_shard_0_takes_statistics() -> None:
    frames = wire.encode(wire.Statistics(1, "w", np.ones(2)))
    with pytest.raises(ProtocolError) as caught:
        wire.decode_to_shard(frames, 1)
    assert caught.value.field == "ps.statistics.shard"


def test_statistics_fit_one_payload_frame() -> None:
    most = wire.MAX_STATISTICS_VALUES
    assert 8 * most == wire.MAX_FRAME_BYTES == 4 * wire.CHUNK_VALUES
    with pytest.raises(ValueError, match="MAX_STATISTICS_VALUES"):
        wire.encode(wire.Statistics(0, "w", np.zeros(most + 1)))
    head = wire.encode(wire.Statistics(0, "w", np.zeros(1)))[0]
    count_at = wire.PREFIX.size
    forged = head[:count_at] + struct.pack("<Q", most + 1) + head[count_at + 8 :]
    with pytest.raises(ProtocolError) as caught:
        wire.decode_to_shard([forged, b""], 0)
    assert caught.value.field == "ps.statistics.count"


def test_weights_and_shard_heartbeat_round_trip() -> None:
    sent = wire.Weights(2, 0xDEADBEEF, 5, 1000, 12, 10, 20, VALUES)
    frames = wire.encode(sent)
    assert frames[0] == wire.topic(2) == b"ps.0002"
    got = _worker_side(sent)
    assert isinstance(got, wire.Weights)
    assert (got.shard, got.incarnation, got.version, got.global_step, got.episodes) == (
        2,
        0xDEADBEEF,
        5,
        1000,
        12,
    )
    assert (got.offset, got.param_count) == (10, 20)
    assert np.array_equal(got.values, VALUES)
    beat = wire.ShardHeartbeat(1, 42, 3, 99, 7, True)
    assert _worker_side(beat) == beat


def test_payload_frames_are_the_array_itself_not_a_copy() -> None:
    values = np.ones(4, np.float32)
    frames = wire.encode(wire.Gradient(0, "w", 0, 0, 0, 0, values))
    assert frames[1] is values or np.shares_memory(frames[1], values)


def test_header_layout_is_the_documented_one() -> None:
    head = wire.encode(wire.Hello(7, "ab", 258))[0]
    assert (
        head == b"RXPS" + bytes([2, 2]) + struct.pack("<H", 7) + struct.pack("<QH", 258, 2) + b"ab"
    )
    beat = wire.encode(wire.ShardHeartbeat(1, 5, 6, 7, 8, True))[1]
    assert beat == b"RXPS\x02\x11" + struct.pack("<HQQQQB", 1, 5, 6, 7, 8, 1)


# -- refusals -----------------------------------------------------------------------------------


def _gradient_frames() -> list[bytes]:
    head, payload = wire.encode(wire.Gradient(0, "w0", 1, 2, 3, 4, VALUES))
    return [head, payload.tobytes()]


def _patch(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(raw)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


NAME_LEN_AT = wire.PREFIX.size + wire.GRADIENT.size - 2
HEAD, PAYLOAD = _gradient_frames()

TO_SHARD_FAULTS = {
    "no_frames": ([], "ps.frames"),
    "short_header": ([HEAD[:5], PAYLOAD], "ps.header"),
    "bad_magic": ([b"XXXX" + HEAD[4:], PAYLOAD], "ps.magic"),
    "bad_version": ([_patch(HEAD, 4, "<B", 1), PAYLOAD], "ps.version"),
    "unknown_kind": ([_patch(HEAD, 5, "<B", 9), PAYLOAD], "ps.kind"),
    "worker_bound_kind": ([_patch(HEAD, 5, "<B", wire.Kind.WEIGHTS), PAYLOAD], "ps.kind"),
    "wrong_shard": ([_patch(HEAD, 6, "<H", 1), PAYLOAD], "ps.gradient.shard"),
    "no_payload": ([HEAD], "ps.gradient.frames"),
    "extra_frame": ([HEAD, PAYLOAD, b""], "ps.gradient.frames"),
    "truncated_fields": ([HEAD[: wire.PREFIX.size + 8], PAYLOAD], "ps.gradient.header"),
    "name_len_too_long": ([_patch(HEAD, NAME_LEN_AT, "<H", 3), PAYLOAD], "ps.gradient.header"),
    "trailing_bytes": ([HEAD + b"!", PAYLOAD], "ps.gradient.header"),
    "empty_name": ([_patch(HEAD[:-2], NAME_LEN_AT, "<H", 0), PAYLOAD], "ps.gradient.worker"),
    "bad_utf8_name": ([HEAD[:-2] + b"\xff\xfe", PAYLOAD], "ps.gradient.worker"),
    "payload_too_short": ([HEAD, PAYLOAD[:-4]], "ps.gradient.payload"),
    "payload_ragged": ([HEAD, PAYLOAD + b"\x00"], "ps.gradient.payload"),
    "hello_with_payload": (
        [wire.encode(wire.Hello(0, "w", 0))[0], PAYLOAD],
        "ps.hello.frames",
    ),
    "heartbeat_unknown_flags": (
        [_patch(wire.encode(wire.WorkerHeartbeat(0, "w", 0, False))[0], 16, "<B", 0x80)],
        "ps.worker_heartbeat.flags",
    ),
    "statistics_ragged_payload": (
        [wire.encode(wire.Statistics(0, "w", np.ones(2)))[0], b"\x00" * 12],
        "ps.statistics.payload",
    ),
    "statistics_without_payload": (
        [wire.encode(wire.Statistics(0, "w", np.ones(2)))[0]],
        "ps.statistics.frames",
    ),
}


@pytest.mark.parametrize("fault", sorted(TO_SHARD_FAULTS))
def test_a_shard_refuses_every_malformed_message_naming_the_field(fault) -> None:
    frames, field = TO_SHARD_FAULTS[fault]
    with pytest.raises(ProtocolError) as caught:
        wire.decode_to_shard(frames, 0)
    assert caught.value.field == field, caught.value


W_TOPIC, W_HEAD, W_PAYLOAD = (
    bytes(memoryview(f)) for f in wire.encode(wire.Weights(1, 9, 1, 2, 3, 0, 5, VALUES))
)
HB_TOPIC, HB_HEAD = wire.encode(wire.ShardHeartbeat(1, 9, 1, 2, 3, False))
INCARNATION_AT = wire.PREFIX.size

TO_WORKER_FAULTS = {
    "one_frame": ([W_HEAD], "ps.frames"),
    "wrong_topic": ([wire.topic(2), W_HEAD, W_PAYLOAD], "ps.weights.topic"),
    "shard_bound_kind": ([W_TOPIC, _patch(W_HEAD, 5, "<B", wire.Kind.GRADIENT)], "ps.kind"),
    "weights_without_payload": ([W_TOPIC, W_HEAD], "ps.weights.frames"),
    "weights_header_too_long": ([W_TOPIC, W_HEAD + b"\x00", W_PAYLOAD], "ps.weights.header"),
    "zero_incarnation": (
        [W_TOPIC, _patch(W_HEAD, INCARNATION_AT, "<Q", 0), W_PAYLOAD],
        "ps.weights.incarnation",
    ),
    "slice_past_param_count": (
        [W_TOPIC, _patch(W_HEAD, len(W_HEAD) - 8, "<Q", 4), W_PAYLOAD],
        "ps.weights.count",
    ),
    "payload_size": ([W_TOPIC, W_HEAD, W_PAYLOAD[:-1]], "ps.weights.payload"),
    "heartbeat_unknown_flags": (
        [HB_TOPIC, _patch(HB_HEAD, len(HB_HEAD) - 1, "<B", 0x02)],
        "ps.shard_heartbeat.flags",
    ),
    "heartbeat_extra_frame": ([HB_TOPIC, HB_HEAD, b""], "ps.shard_heartbeat.frames"),
    "totals_float32_payload": (
        [*wire.encode(wire.StatisticsTotals(0, 1, 0, np.ones(2)))[:2], b"\x00" * 8],
        "ps.statistics_totals.payload",
    ),
}


@pytest.mark.parametrize("fault", sorted(TO_WORKER_FAULTS))
def test_a_worker_refuses_every_malformed_publication_naming_the_field(fault) -> None:
    frames, field = TO_WORKER_FAULTS[fault]
    with pytest.raises(ProtocolError) as caught:
        wire.decode_to_worker(frames)
    assert caught.value.field == field, caught.value


@pytest.mark.parametrize(
    "message",
    [
        wire.Hello(0, "", 0),
        wire.Hello(0, "x" * 256, 0),
        wire.Hello(0, "w", -1),
        wire.Gradient(0, "w", 0, 0, 0, 0, np.zeros((2, 2), np.float32)),
        wire.Gradient(70000, "w", 0, 0, 0, 0, VALUES),
        wire.Weights(0, 1, 0, 0, 0, 3, 4, VALUES),
    ],
    ids=["empty_name", "long_name", "negative", "2d_payload", "shard_range", "past_count"],
)
def test_encode_refuses_what_the_wire_cannot_carry(message) -> None:
    with pytest.raises(ValueError):
        wire.encode(message)
