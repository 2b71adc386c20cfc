"""The gateway's pure parts: the WebSocket envelope, the rate budgets, the config section."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaax_zmq.broker.fairness import TokenBucket
from relaax_zmq.config import parse_config
from relaax_zmq.errors import ConfigError, ProtocolError
from relaax_zmq.gateway import ConnectionBudget, pack, unpack
from relaax_zmq.protocol import encode, messages
from relaax_zmq.protocol.websocket import packed_size

MAX_FRAMES = 66
APP = {"algorithm": {"name": "da3c"}, "environment": {"name": "CartPole-v1"}}


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8))
def test_envelope_round_trip_aligns_every_frame(frames: list[bytes]) -> None:
    data = pack(frames)
    assert len(data) == packed_size([len(f) for f in frames])
    back = unpack(data, MAX_FRAMES)
    assert [bytes(f) for f in back] == frames
    base = memoryview(data)
    for view in back:  # views on the message itself, each starting 8-aligned
        assert view.obj is base.obj
    offsets = []
    offset = (4 + 4 * len(frames) + 7) // 8 * 8
    for frame in frames:
        offsets.append(offset)
        offset += (len(frame) + 7) // 8 * 8
    assert all(o % 8 == 0 for o in offsets)


def test_an_rlx_message_travels_unchanged() -> None:
    frames = encode(messages.init(sequence=5, session_count=3))
    assert [bytes(f) for f in unpack(pack(frames), MAX_FRAMES)] == [bytes(f) for f in frames]


def _envelope(count: int, lengths: list[int], body: bytes) -> bytes:
    return struct.pack(f"<{1 + len(lengths)}I", count, *lengths) + body


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"\x01\x00\x00", "envelope"),
        (_envelope(0, [], b"\0" * 4), "envelope.frame_count"),
        (_envelope(67, [], b"\0" * 4), "envelope.frame_count"),
        (struct.pack("<2I", 3, 4), "envelope.lengths"),
        (_envelope(1, [4], b"abcd"), "envelope.size"),  # the frame's padding is missing
        (_envelope(1, [4], b"abcd\0\0\0\0\0"), "envelope.size"),  # one byte too many
        (_envelope(1, [4], b"abcd\0\0\0\1"), "envelope.padding"),
        (
            _envelope(2, [1, 1], b"\0\0\0\1" + b"a" + b"\0" * 7 + b"b" + b"\0" * 7),
            "envelope.padding",
        ),
    ],
)
def test_a_malformed_envelope_is_refused_naming_its_field(data: bytes, field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        unpack(data, MAX_FRAMES)
    assert caught.value.field == field
    assert "expected" in str(caught.value)


def test_pacing_spends_the_burst_then_waits_out_the_debt() -> None:
    bucket = TokenBucket.full(rate=100.0, burst=10, now=0.0)
    assert [bucket.pace(0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.pace(0.0) == pytest.approx(0.01)  # one token of debt: 1/100 s
    assert bucket.pace(0.02) == 0.0  # 2 tokens came back, 1 paid the debt
    assert bucket.pace(1000.0, 5) == 0.0  # refilled, never above the burst
    assert bucket.tokens == 5


def _budget() -> ConnectionBudget:
    return ConnectionBudget.of(
        rate=1000.0,
        burst=100,
        byte_rate=1000.0,
        byte_burst=1000,
        refusal_rate=1.0,
        refusal_burst=2.0,
        now=0.0,
    )


def test_a_connection_budget_waits_for_the_scarcer_of_messages_and_bytes() -> None:
    budget = _budget()
    assert budget.delay(1000, 0.0) == 0.0
    assert budget.delay(500, 0.0) == pytest.approx(0.5)  # bytes are short, messages are not


def test_refusals_spend_the_broker_rule_then_the_connection_goes() -> None:
    budget = _budget()
    assert budget.refused(0, 0.0)  # 1 token of 2
    assert not budget.refused(32 << 10, 0.0)  # 2 tokens: more than the 1 left
    assert budget.refused(0, 1.0)  # one came back


def test_the_gateway_section_has_safe_defaults() -> None:
    g = parse_config(APP).gateway
    assert (g.enabled, g.host, g.port, g.path, g.token) == (False, "127.0.0.1", 7800, "/rlx", None)
    assert g.frame_limit == 2 * g.max_message_bytes


@pytest.mark.parametrize(
    ("values", "path", "text"),
    [
        ({"path": "rlx"}, "gateway.path", "expected a URL path"),
        ({"token": "short"}, "gateway.token", "16-256 characters"),
        ({"token": "a b" * 10}, "gateway.token", "16-256 characters"),
        ({"token": "a" * 20, "token_file": "t"}, "gateway.token_file", "not both"),
        ({"tls_cert": "c.pem"}, "gateway.tls_key", "together"),
        ({"origins": ["example.com"]}, "gateway.origins[0]", "scheme://host"),
        ({"max_in_flight": 0}, "gateway.max_in_flight", ">= 1"),
        ({"colour": 1}, "gateway.colour", "unknown"),
    ],
)
def test_a_bad_gateway_section_names_the_key(values: dict, path: str, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**APP, "gateway": values})
    assert caught.value.path == path
    assert text in str(caught.value)


def test_a_token_file_is_read_and_checked(tmp_path) -> None:
    (tmp_path / "token").write_text("x" * 32 + "\n")
    g = parse_config({**APP, "gateway": {"token_file": "token"}}, app_dir=tmp_path).gateway
    assert g.access_token() == "x" * 32
    (tmp_path / "token").write_text("no")
    with pytest.raises(ConfigError, match="gateway.token_file"):
        g.access_token()


@given(st.binary(max_size=200))
def test_any_bytes_unpack_or_are_refused_with_a_protocol_error(data: bytes) -> None:
    try:
        frames = unpack(data, MAX_FRAMES)
    except ProtocolError as exc:
        assert exc.field.startswith("envelope")
    else:
        assert pack([bytes(f) for f in frames]) == data  # only the canonical form passes


def test_the_descriptor_limit_is_raised_for_max_connections() -> None:
    import resource

    from relaax_zmq.gateway.server import raise_descriptor_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        wanted = min(1000, hard - 64)
        assert raise_descriptor_limit(wanted) >= wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_empty_tensors_of_any_shape_pack() -> None:
    # found by the gateway fuzz target: memoryview.cast refuses views with a zero in the shape
    frames = [b"head", np.zeros((0, 4), np.float32), np.zeros((3, 0), np.int64)]
    assert [bytes(f) for f in unpack(pack(frames), MAX_FRAMES)] == [b"head", b"", b""]
