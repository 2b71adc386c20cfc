"""The experience wire: named tensors in ZeroMQ frames, sent and read without a copy.

Actors ship unrolls to learners and transitions to replay servers with it; learners ask
replay servers for samples and send back priorities with it (docs/learner.md).

One message is ``[header, tensor_0, ..., tensor_{n-1}]``:

- ``header``: a UTF-8 JSON object, at most ``MAX_HEADER_BYTES``::

      {"v": 1, "kind": "unrolls", "source": "worker-0@node-7", "version": 42,
       "steps": 512, "episodes": 3, "fields": [["obs", "<f4", [16, 33, 4]], ...],
       "meta": {"lag": 0}}

  ``kind`` is one of ``KINDS``; ``version`` the weight version that produced the
  experience (or that a request concerns); ``steps`` and ``episodes`` the environment
  steps and finished episodes it covers; ``fields`` name each following frame's dtype
  (``DTYPES``) and shape; ``meta`` holds a few numbers (at most ``MAX_META``).
- ``tensor_i``: the C-contiguous little-endian bytes of field i, exactly
  ``prod(shape) * itemsize`` of them.

``encode`` hands ZeroMQ the arrays' own buffers; ``decode`` returns read-only
``np.frombuffer`` views on the received frames. Nothing is pickled: ``decode`` checks
every part and raises ``ProtocolError`` naming the part, what was expected and what came.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from relaax_zmq.errors import ProtocolError

WIRE_VERSION = 1
#: What a message carries: actor unrolls (to a learner), transitions (to a replay server),
#: a sample request and its batch, priority updates (learner <-> replay) and a refusal.
KINDS = ("unrolls", "transitions", "sample", "batch", "priorities", "refused")
#: The header frame's longest legal size.
MAX_HEADER_BYTES = 64 << 10
#: Most tensors in one message, most dimensions of one, most meta entries.
MAX_FIELDS = 32
MAX_NDIM = 8
MAX_META = 32
#: The dtypes a tensor may have, by their little-endian ``str``.
DTYPES = frozenset(
    np.dtype(t).newbyteorder("<").str
    for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1")
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")
_SOURCE_MAX = 200
_INT_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class TensorMessage:
    """One decoded (or to-be-encoded) message of the experience wire."""

    kind: str
    fields: Mapping[str, np.ndarray]
    source: str = ""
    version: int = 0
    steps: int = 0
    episodes: int = 0
    meta: Mapping[str, float] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors (the header aside)."""
        return sum(int(a.nbytes) for a in self.fields.values())


def encode(message: TensorMessage) -> list[Any]:
    """The frames of ``message``: its JSON header, then each tensor's own buffer."""
    if message.kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {message.kind!r}")
    arrays = [
        np.ascontiguousarray(a, np.asarray(a).dtype.newbyteorder("<"))
        for a in message.fields.values()
    ]
    table = [
        [name, a.dtype.str, list(a.shape)] for name, a in zip(message.fields, arrays, strict=True)
    ]
    header = {
        "v": WIRE_VERSION,
        "kind": message.kind,
        "source": message.source,
        "version": int(message.version),
        "steps": int(message.steps),
        "episodes": int(message.episodes),
        "fields": table,
        "meta": {k: float(v) for k, v in message.meta.items()},
    }
    frames: list[Any] = [json.dumps(header, separators=(",", ":")).encode()]
    frames += [memoryview(a).cast("B") if a.size else b"" for a in arrays]
    return frames


def decode(frames: Sequence[Any], max_bytes: int) -> TensorMessage:
    """The message in ``frames`` (bytes, ``zmq.Frame`` or buffers), its tensors read-only
    views; ``ProtocolError`` for anything malformed or above ``max_bytes`` of tensors."""
    if not frames:
        raise ProtocolError("message", "a header frame", "no frames")
    header = _header(frames[0])
    table = _field_table(header.get("fields"))
    if len(frames) != 1 + len(table):
        raise ProtocolError("frames", f"1 + {len(table)} (header + one per field)", len(frames))
    total = sum(math.prod(shape) * np.dtype(dtype).itemsize for _, dtype, shape in table)
    if total > max_bytes:
        raise ProtocolError("tensors", f"at most {max_bytes} bytes", f"{total} bytes")
    fields: dict[str, np.ndarray] = {}
    for (name, dtype, shape), frame in zip(table, frames[1:], strict=True):
        buffer = memoryview(getattr(frame, "buffer", frame))
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if buffer.nbytes != expected:
            raise ProtocolError(
                f"field {name!r}", f"{expected} bytes ({dtype}{list(shape)})", buffer.nbytes
            )
        array = (
            np.frombuffer(buffer, dtype=dtype).reshape(shape)
            if expected
            else np.zeros(shape, dtype)
        )
        array.flags.writeable = False
        fields[name] = array
    return TensorMessage(
        kind=header["kind"],
        fields=fields,
        source=header["source"],
        version=header["version"],
        steps=header["steps"],
        episodes=header["episodes"],
        meta=_meta(header.get("meta", {})),
    )


def _header(frame: Any) -> dict[str, Any]:
    raw = bytes(getattr(frame, "buffer", frame))
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("header", f"at most {MAX_HEADER_BYTES} bytes", f"{len(raw)} bytes")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # nested past the stack
        raise ProtocolError("header", "a UTF-8 JSON object", f"undecodable bytes ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError("header", "a JSON object", type(header).__name__)
    if header.get("v") != WIRE_VERSION:
        raise ProtocolError("header.v", WIRE_VERSION, header.get("v"))
    if header.get("kind") not in KINDS:
        raise ProtocolError("header.kind", f"one of {list(KINDS)}", header.get("kind"))
    source = header.get("source", "")
    if not isinstance(source, str) or len(source) > _SOURCE_MAX:
        raise ProtocolError(
            "header.source", f"a string of at most {_SOURCE_MAX}", repr(source)[:80]
        )
    header["source"] = source
    for key in ("version", "steps", "episodes"):
        value = header.get(key, 0)
        if type(value) is not int or not 0 <= value <= _INT_MAX:
            raise ProtocolError(f"header.{key}", "an integer in [0, 2^63)", repr(value)[:80])
        header[key] = value
    return header


def _field_table(table: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    if not isinstance(table, list) or len(table) > MAX_FIELDS:
        raise ProtocolError("header.fields", f"a list of at most {MAX_FIELDS}", repr(table)[:80])
    out: list[tuple[str, str, tuple[int, ...]]] = []
    seen: set[str] = set()
    for i, entry in enumerate(table):
        where = f"header.fields[{i}]"
        if not isinstance(entry, list) or len(entry) != 3:
            raise ProtocolError(where, "[name, dtype, shape]", repr(entry)[:80])
        name, dtype, shape = entry
        if not isinstance(name, str) or not _NAME.match(name) or name in seen:
            raise ProtocolError(where, "a new lower-case identifier", repr(name)[:80])
        if dtype not in DTYPES:
            raise ProtocolError(
                f"{where} ({name})", f"a dtype of {sorted(DTYPES)}", repr(dtype)[:40]
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d < (1 << 31) for d in shape)
        ):
            raise ProtocolError(
                f"{where} ({name})", f"a shape of at most {MAX_NDIM} sizes", repr(shape)[:80]
            )
        seen.add(name)
        out.append((name, dtype, tuple(shape)))
    return out


def _meta(meta: Any) -> dict[str, float]:
    if not isinstance(meta, dict) or len(meta) > MAX_META:
        raise ProtocolError("header.meta", f"an object of at most {MAX_META}", repr(meta)[:80])
    out = {}
    for key, value in meta.items():
        if not _NAME.match(key) or type(value) not in (int, float) or not math.isfinite(value):
            raise ProtocolError(
                "header.meta", "identifier: finite number", f"{key!r}: {value!r}"[:80]
            )
        out[key] = float(value)
    return out
