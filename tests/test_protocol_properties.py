"""Property tests (hypothesis): round trips, random bytes, and backend agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import NUMPY_DTYPES, ErrorCode, MessageType
from relaax_zmq.protocol.vectors import load_vectors

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WIRE_DTYPES = st.sampled_from(list(NUMPY_DTYPES.values()))
U64 = st.integers(0, 2**64 - 1)
SESSIONS = st.integers(1, 6)
VALID_FRAMES = [v.frames for v in load_vectors() if v.message is not None]


def tensor(n: int, min_dims: int = 0) -> st.SearchStrategy[np.ndarray]:
    """An array of shape (n, ...) of any wire dtype."""
    return WIRE_DTYPES.flatmap(
        lambda dt: hnp.arrays(
            dt,
            hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=0, max_side=4).map(
                lambda s: (n, *s)
            ),
        )
    )


@st.composite
def any_message(draw: st.DrawFn):
    kind = draw(st.sampled_from(list(MessageType)))
    seq, sid, n = draw(U64), draw(U64), draw(SESSIONS)
    if kind == MessageType.INIT:
        return messages.init(n, exploit=draw(st.booleans()), session_id=sid, sequence=seq)
    if kind == MessageType.READY:
        versions = draw(st.none() | st.lists(st.integers(0, 255), max_size=3))
        return messages.ready(sid, n, exploit=draw(st.booleans()), sequence=seq, versions=versions)
    if kind == MessageType.UPDATE:
        reward = draw(st.none() | hnp.arrays(st.sampled_from([np.float32, np.float64]), (n,)))
        state = draw(st.none() | tensor(n))
        per_session = draw(st.booleans())
        term = draw(hnp.arrays(bool, (n,))) if per_session else draw(st.booleans())
        trunc = draw(hnp.arrays(bool, (n,))) if per_session else draw(st.booleans())
        return messages.update(
            sid,
            reward=reward,
            state=state,
            terminal=term,
            truncated=trunc,
            session_count=n,
            sequence=seq,
        )
    if kind == MessageType.ACTION:
        return messages.action(sid, draw(tensor(n)), sequence=seq, restart=draw(st.booleans()))
    if kind == MessageType.METRICS:
        names = st.text(
            st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]),
            min_size=1,
            max_size=8,
        )
        scalars = draw(st.dictionaries(names, st.floats(allow_nan=False), max_size=4))
        hists = draw(st.dictionaries(names, st.lists(st.floats(width=32), max_size=5), max_size=3))
        return messages.metrics(sid, scalars, hists, session_count=n, sequence=seq)
    if kind == MessageType.ERROR:
        code = draw(st.sampled_from(list(ErrorCode)))
        return messages.error(
            code,
            draw(st.text(max_size=20)),
            sequence=seq,
            session_id=sid,
            versions=draw(st.none() | st.just([1])),
            restart=draw(st.booleans()),
        )
    restart = kind == MessageType.DONE and draw(st.booleans())
    return messages.simple(
        kind, sid, n if kind != MessageType.HEARTBEAT else 0, sequence=seq, restart=restart
    )


def wire(frames) -> list[bytes]:
    return [bytes(memoryview(f)) for f in frames]


@SETTINGS
@given(message=any_message())
def test_round_trip_every_type(codec, message) -> None:
    frames = wire(codec.encode(message))
    assert codec.decode(frames) == message


@SETTINGS
@given(message=any_message())
def test_both_backends_encode_identically(reference_codec, compiled_codec, message) -> None:
    before = compiled_codec.stats()
    frames = wire(compiled_codec.encode(message))
    assert wire(reference_codec.encode(message)) == frames
    assert compiled_codec.decode(frames) == reference_codec.decode(frames)
    assert compiled_codec.stats() == before, "valid traffic must stay on the compiled fast path"


@SETTINGS
@given(frames=st.lists(st.binary(max_size=96), max_size=6))
def test_random_bytes_raise_protocol_error_only(codec, frames) -> None:
    try:
        codec.decode(frames)
    except ProtocolError:
        pass


@SETTINGS
@given(data=st.data())
def test_corrupted_messages_get_the_same_verdict_from_both_backends(
    reference_codec, compiled_codec, data
) -> None:
    """Flip bytes of real frames: both backends accept the same message or name the same field."""
    frames = [bytearray(f) for f in data.draw(st.sampled_from(VALID_FRAMES))]
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(frames) - 1))
        if frames[index]:
            at = data.draw(st.integers(0, len(frames[index]) - 1))
            frames[index][at] = data.draw(st.integers(0, 255))
    frames = [bytes(f) for f in frames]
    verdicts = []
    for codec in (reference_codec, compiled_codec):
        try:
            verdicts.append(("ok", codec.decode(frames)))
        except ProtocolError as exc:
            verdicts.append(("error", exc.field))
    assert verdicts[0] == verdicts[1]


@SETTINGS
@given(data=st.data())
def test_truncated_frames_are_refused(codec, data) -> None:
    frames = data.draw(st.sampled_from([f for f in VALID_FRAMES if len(f) > 1]))
    index = data.draw(st.integers(0, len(frames) - 1))
    if not frames[index]:
        frames = frames[:index]  # dropping an empty frame still truncates the message
    else:
        cut = data.draw(st.integers(0, len(frames[index]) - 1))
        frames = [*frames[:index], frames[index][:cut], *frames[index + 1 :]]
    with pytest.raises(ProtocolError):
        codec.decode(frames)
