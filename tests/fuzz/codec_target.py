"""Fuzz target ``codec``: the RLX decoders on arbitrary multipart messages.

For every frame list (``frames.split_frames``) it checks that

- the reference decoder either returns a message or raises ``ProtocolError``, nothing
  else (no IndexError, struct.error, numpy's ValueError, MemoryError...), under the
  default limits and under small ones; what the small limits accept the default accept;
- the compiled codec (when built), fed ``zmq.Frame`` objects as the broker and workers
  receive them, reaches the same verdict: an equal message, or an error naming the same field;
- ``envelope.peek`` (the broker's routing read) refuses exactly what the decoder refuses
  for its header or frame count, and reads an accepted message's header right;
- a refused message gets an error reply (``refusal``) that encodes and decodes;
- an accepted message re-encodes (both codecs, the same bytes) to frames that decode
  to an equal message, and to the very input frames when its tensors are in wire order;
  its readers (metrics, error, episode ends) raise nothing but ``ProtocolError``.

Seeds: the protocol's test vectors (``relaax_zmq/protocol/testdata``).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any

import zmq

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages, reference
from relaax_zmq.protocol.constants import MessageType
from relaax_zmq.protocol.envelope import peek
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.protocol.vectors import load_vectors

from .frames import Finding, join_frames, split_frames

#: Limits small enough that the fuzzer reaches every limit check.
SMALL_LIMITS = Limits(max_elements=4096, max_tensors=3, max_sessions=8)

_READERS: dict[int, Callable[[Message], Any]] = {
    MessageType.METRICS: messages.read_metrics,
    MessageType.ERROR: messages.read_error,
    MessageType.UPDATE: messages.read_episode_ends,
}


def _compiled() -> Any:
    try:
        return importlib.import_module("relaax_zmq._codec")
    except ImportError:
        return None


COMPILED = _compiled()


def seeds() -> list[bytes]:
    """Every test vector, valid and invalid, as a fuzz input."""
    return [join_frames(v.frames) for v in load_vectors()]


def test_one_input(data: bytes) -> None:
    """Check the decoders on the frames ``data`` stands for (``Finding`` when one fails)."""
    check_frames(split_frames(data))


def check_frames(frames: list[bytes]) -> None:
    """Every property of the module docstring for one frame list."""
    message, error = _decode(reference.decode, frames, DEFAULT_LIMITS)
    small, small_error = _decode(reference.decode, frames, SMALL_LIMITS)
    if small is not None and message != small:
        raise Finding(f"accepted under small limits only: {error}")
    if COMPILED is not None:
        zmq_frames = [zmq.Frame(f) for f in frames]
        _same_verdict(
            "compiled", _decode(COMPILED.decode, zmq_frames, DEFAULT_LIMITS), message, error
        )
    _check_peek(frames, message, error)
    if error is not None:
        _check_refusal(error, frames, DEFAULT_LIMITS)
    if small_error is not None:
        _check_refusal(small_error, frames, SMALL_LIMITS)
    if message is not None:
        _check_accepted(message, frames)


def _decode(
    decode: Callable[..., Message], frames: list[Any], limits: Limits
) -> tuple[Message | None, ProtocolError | None]:
    try:
        return decode(frames, limits), None
    except ProtocolError as exc:
        return None, exc


def _same_verdict(
    name: str,
    got: tuple[Message | None, ProtocolError | None],
    message: Message | None,
    error: ProtocolError | None,
) -> None:
    other, other_error = got
    if (error is None) != (other_error is None):
        raise Finding(f"reference says {error or message!r}, {name} says {other_error or other!r}")
    if error is not None and other_error is not None and error.field != other_error.field:
        raise Finding(f"reference refuses {error.field} ({error}), {name} {other_error.field}")
    if message is not None and message != other:
        raise Finding(f"reference decodes {message!r}, {name} {other!r}")


def _check_peek(frames: list[bytes], message: Message | None, error: ProtocolError | None) -> None:
    try:
        env = peek(frames)
    except ProtocolError as exc:
        if error is None or error.field != exc.field:
            raise Finding(f"peek refuses {exc.field} ({exc}) but the decoder says {error}") from exc
        return
    if message is not None and tuple(env[:6]) != message.header_fields():
        raise Finding(f"peek reads {env}, the decoder {message.header_fields()}")


def _check_refusal(error: ProtocolError, frames: list[bytes], limits: Limits) -> None:
    reply = refusal(error, frames, limits)
    if reference.decode(reference.encode(reply, limits), limits) != reply:
        raise Finding(f"the refusal {reply!r} does not survive its own encoding")


def _check_accepted(message: Message, frames: list[bytes]) -> None:
    encoded = [bytes(memoryview(f)) for f in reference.encode(message)]
    if reference.decode(encoded) != message:
        raise Finding(f"{message!r} decodes differently once re-encoded")
    if list(message.tensors) == sorted(message.tensors) and encoded != frames:
        raise Finding(f"{message!r} re-encodes to other bytes than it came in")
    if COMPILED is not None:
        compiled = [bytes(memoryview(f)) for f in COMPILED.encode(message)]
        if compiled != encoded:
            raise Finding(f"the codecs encode {message!r} differently")
    reader = _READERS.get(message.type)
    if reader is not None:
        with contextlib.suppress(ProtocolError):  # a reader may refuse, never crash
            reader(message)
