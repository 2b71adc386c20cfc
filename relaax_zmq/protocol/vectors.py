"""Read and write the RLX test-vector file (relaax_zmq/protocol/testdata/).

The format is specified in docs/protocol.md, section 7: line based, so that a C
test reads it as easily as Python. ``vector`` entries are valid messages,
``invalid`` entries frames to refuse (``error field=... code=...``: the field the
ProtocolError names and the error code a server answers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relaax_zmq.protocol.constants import NUMPY_DTYPES
from relaax_zmq.protocol.message import Message

VECTOR_FILE = Path(__file__).parent / "testdata" / "rlx_v1_vectors.txt"


@dataclass
class Vector:
    """One entry of the file: a valid message, or frames to refuse (``error_field``)."""

    name: str
    frames: list[bytes] = field(default_factory=list)
    message: Message | None = None
    error_field: str | None = None
    #: the ErrorCode a server answers the refused frames with (invalid entries)
    error_code: int | None = None
    comment: str = ""


def load_vectors(path: Path = VECTOR_FILE) -> list[Vector]:
    """Parse the vector file."""
    vectors: list[Vector] = []
    current: Vector | None = None
    comment: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            comment = []
            continue
        if line.startswith("#"):
            comment.append(line[1:].strip())
            continue
        word, _, rest = line.partition(" ")
        if word in ("vector", "invalid"):
            current = Vector(rest, comment="\n".join(comment))
            comment = []
        elif current is None:
            raise ValueError(f"{path}:{number}: {word!r} outside a vector")
        elif word == "header":
            current.message = Message(**{k: int(v, 0) for k, v in _pairs(rest).items()})
        elif word == "tensor":
            current.message.tensors.update([_tensor(_pairs(rest))])  # type: ignore[union-attr]
        elif word == "error":
            pairs = _pairs(rest)
            current.error_field = pairs["field"]
            current.error_code = int(pairs["code"]) if "code" in pairs else None
        elif word == "frame":
            current.frames.append(bytes.fromhex(rest))
        elif word == "end":
            vectors.append(current)
            current = None
        else:
            raise ValueError(f"{path}:{number}: unknown line {word!r}")
    return vectors


def format_vectors(vectors: list[Vector]) -> str:
    """The text of a vector file."""
    out: list[str] = []
    for vector in vectors:
        out += [f"# {line}" for line in vector.comment.splitlines()]
        if vector.message is None:
            code = "" if vector.error_code is None else f" code={vector.error_code}"
            out += [f"invalid {vector.name}", f"error field={vector.error_field}{code}"]
        else:
            m = vector.message
            out.append(f"vector {vector.name}")
            out.append(
                f"header version={m.version} type={m.type} flags={m.flags:#x} "
                f"sequence={m.sequence} session_id={m.session_id} session_count={m.session_count}"
            )
            out += [_format_tensor(role, arr) for role, arr in m.tensors.items()]
        out += [f"frame {frame.hex()}" for frame in vector.frames]
        out += ["end", ""]
    return "\n".join(out)


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split())


def _tensor(pairs: dict[str, str]) -> tuple[int, np.ndarray]:
    dtype = NUMPY_DTYPES[int(pairs["dtype"])]
    shape = tuple(int(d) for d in pairs["shape"].split(",") if d)
    parse = float if dtype.kind == "f" else int
    values = [parse(v) for v in pairs["values"].split(",") if v]
    return int(pairs["role"]), np.array(values, dtype=dtype).reshape(shape)


def _format_tensor(role: int, arr: np.ndarray) -> str:
    code = next(
        c
        for c, dt in NUMPY_DTYPES.items()
        if (dt.kind, dt.itemsize) == (arr.dtype.kind, arr.dtype.itemsize)
    )
    if arr.dtype.kind == "f":
        values = [repr(float(v)) for v in arr.ravel()]
    else:
        values = [str(int(v)) for v in arr.ravel()]
    shape = ",".join(str(d) for d in arr.shape)
    return f"tensor role={role} dtype={code} shape={shape} values={','.join(values)}"
