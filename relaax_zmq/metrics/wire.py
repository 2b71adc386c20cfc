"""The metrics wire format: one ZeroMQ message per batch, PUSH (senders) to PULL (collector).

A batch is ``[header, *rlx]``: ``header`` is a UTF-8 JSON object ``{"version": 1, "source":
"worker-0", "step": 12, "time": 1700000000.5}`` and ``rlx`` the frames of one RLX METRICS
message (``relaax_zmq.protocol.messages.metrics``) holding every scalar and histogram of the
batch. ``step`` may be null: the collector then numbers the values of each tag itself. Nothing
is pickled; ``decode_batch`` checks every part and raises ``BatchError`` naming what is wrong.
"""

from __future__ import annotations

import json
import re
import sys
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq
from numpy.typing import ArrayLike

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import MessageType, type_name
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.runtime.sockets import DEFAULT_HWM, METRICS_MAX_MESSAGE_BYTES, SocketSpec

#: Version of the header frame.
VERSION = 1
#: A header frame longer than this is refused (it holds four short fields).
MAX_HEADER_BYTES = 4096
#: Batches a sender queues while the collector is away or slow; more are dropped.
SENDER_HWM = 1000
#: ``<kind>-<instance>``: letters, digits and ``_ . : @ -``; the kind is what precedes the first -.
_SOURCE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,199}$")
_MAX_STEP = (1 << 63) - 1


class BatchError(Exception):
    """A received batch is malformed; ``reason`` is one of frames, header, rlx or metrics."""

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text
        super().__init__(f"{reason}: {text}")


@dataclass(frozen=True)
class Header:
    """The header frame of a batch."""

    source: str
    step: int | None
    time: float

    @property
    def kind(self) -> str:
        """The sender's kind: ``worker`` for ``worker-0`` (the whole source if it has no -)."""
        return source_kind(self.source)


@dataclass(frozen=True)
class Batch:
    """A decoded batch: header, the RLX message's session id, scalars and histograms."""

    header: Header
    session_id: int
    scalars: dict[str, float]
    histograms: dict[str, np.ndarray]


def check_source(source: str) -> str:
    """``source`` if it is a valid sender name (``worker-0``, ``ps-1``); else ValueError."""
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ValueError(
            f"expected a source like worker-0 (letters, digits, _ . : @ -), got {source!r}"
        )
    return source


def source_kind(source: str) -> str:
    """The kind of a source: the text before its first ``-``."""
    return source.split("-", 1)[0]


def encode_batch(
    source: str,
    step: int | None,
    scalars: Mapping[str, float] | None = None,
    histograms: Mapping[str, ArrayLike] | None = None,
    *,
    time: float | None = None,
    session_id: int = 0,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Any]:
    """The frames of one batch (raises ProtocolError for a name or size the RLX codec refuses)."""
    header = {
        "version": VERSION,
        "source": source,
        "step": step,
        "time": _time.time() if time is None else time,
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return [head, *encode(messages.metrics(session_id, scalars, histograms), limits)]


def decode_header(frame: Any) -> Header:
    """Parse and check a header frame; BatchError("header", ...) when it is not one."""
    raw = frame.bytes if isinstance(frame, zmq.Frame) else bytes(frame)
    if len(raw) > MAX_HEADER_BYTES:
        raise BatchError("header", f"expected at most {MAX_HEADER_BYTES} bytes, got {len(raw)}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting: recursion
        raise BatchError("header", f"expected a UTF-8 JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise BatchError("header", f"expected a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if not _is_int(version) or version != VERSION:
        raise BatchError("header", f"version: expected {VERSION}, got {version!r}")
    source = data.get("source")
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise BatchError("header", f"source: expected a name like worker-0, got {source!r}")
    step = data.get("step")
    if step is not None and not (_is_int(step) and 0 <= step <= _MAX_STEP):
        raise BatchError("header", f"step: expected null or an int >= 0, got {step!r}")
    stamp = data.get("time")
    # a comparison, not math.isfinite: that raises for an int too large for a float
    if not (_is_number(stamp) and 0 <= stamp <= sys.float_info.max):
        raise BatchError("header", f"time: expected unix seconds, got {stamp!r}")
    return Header(source, step, float(stamp))


def decode_batch(
    frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None
) -> Batch:
    """Check and decode a received batch (of ``max_bytes`` at most, when given);
    BatchError names the first thing wrong."""
    if len(frames) < 2:
        raise BatchError("frames", f"expected a header and RLX frames, got {len(frames)} frame(s)")
    if max_bytes is not None:
        size = sum(len(frame) for frame in frames)
        if size > max_bytes:
            raise BatchError("frames", f"expected at most {max_bytes} bytes, got {size}")
    header = decode_header(frames[0])
    try:
        message = decode(frames[1:], limits)
    except ProtocolError as exc:
        raise BatchError("rlx", str(exc)) from None
    except Exception as exc:  # a codec surprise must not stop the collector
        raise BatchError("rlx", f"{type(exc).__name__}: {exc}") from None
    if message.type != MessageType.METRICS:
        raise BatchError("rlx", f"header.type: expected metrics, got {type_name(message.type)}")
    try:
        scalars, histograms = messages.read_metrics(message)
    except ProtocolError as exc:
        raise BatchError("metrics", str(exc)) from None
    for name in (*scalars, *histograms):
        if not name:
            raise BatchError("metrics", "expected non-empty metric names")
    return Batch(header, message.session_id, scalars, histograms)


def sender_spec(
    endpoint: str, *, hwm: int = SENDER_HWM, max_message_bytes: int = METRICS_MAX_MESSAGE_BYTES
) -> SocketSpec:
    """A sender's PUSH socket: connects to the collector, queues at most ``hwm`` batches."""
    return SocketSpec("metrics.sender", zmq.PUSH, endpoint, False, max_message_bytes, hwm=hwm)


def collector_spec(
    endpoint: str, *, hwm: int = DEFAULT_HWM, max_message_bytes: int = METRICS_MAX_MESSAGE_BYTES
) -> SocketSpec:
    """The collector's PULL socket, bound at ``metrics.endpoint``."""
    return SocketSpec("metrics.collector", zmq.PULL, endpoint, True, max_message_bytes, hwm=hwm)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
