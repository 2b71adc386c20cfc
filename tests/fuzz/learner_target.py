"""Fuzz target ``learner``: the experience wire's decoder and the learner's intake on
arbitrary frames.

An input's last byte says whether its frames (``frames.take_frames``) go as they are or
with the header frame replaced by a JSON header built from chosen fields (kinds, dtypes,
shapes and meta of every JSON type and size, keys missing). For every frame list:
``wire.decode`` returns a message or raises ``ProtocolError``, nothing else (the learner
and replay daemons catch nothing more); an accepted message encodes back to frames that
decode to the same fields; and the ``BatchAssembler`` takes it, refusing or keeping it,
without raising. Seeds: unrolls, transitions, a sample request and priorities.
"""

from __future__ import annotations

import json
from typing import Any

import atheris
import numpy as np

from relaax_zmq.errors import ProtocolError
from relaax_zmq.learner import wire
from relaax_zmq.learner.assembly import BatchAssembler

from .frames import Finding, join_frames, nested, take_frames

MAX_BYTES = 1 << 16


def seeds() -> list[bytes]:
    messages = [
        wire.TensorMessage(
            "unrolls",
            {
                "obs": np.zeros((1, 3, 4), np.float32),
                "action": np.ones((1, 2), np.int64),
                "done": np.zeros((1, 2), np.float32),
            },
            "worker-0@h",
            7,
            2,
            0,
        ),
        wire.TensorMessage("transitions", {"priority": np.ones(5, np.float32)}, "w", 1, 5, 1),
        wire.TensorMessage("sample", {}, "learner-0", meta={"batch_size": 32, "beta": 0.4}),
        wire.TensorMessage("priorities", {"key": np.arange(3), "priority": np.ones(3)}),
    ]
    out = []
    for m in messages:
        frames = [bytes(memoryview(f)) for f in wire.encode(m)]
        out.append(join_frames(frames) + b"\0")
    return out


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    built = fdp.ConsumeIntInRange(0, 1) == 1
    frames = take_frames(fdp)
    if built and frames:
        frames[0] = header(fdp)
    check_frames(frames)


def header(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A JSON header from chosen values (any of them may be wrong)."""

    def pick(*options: Any) -> Any:
        return options[fdp.ConsumeIntInRange(0, len(options) - 1)]

    dims = pick([1, 2], [0], [], [2**31], [-1], [1.5], "x", [1] * 9, [3, 4])
    field = [
        pick("obs", "a", "A", "", 3, "x" * 40),
        pick("<f4", "<i8", "|b1", "f4", "<c8", 1),
        dims,
    ]
    fields = {
        "v": pick(1, 1, 0, True, 1.0, None),
        "kind": pick("unrolls", "transitions", "sample", "batch", "nope", None),
        "source": pick("worker-0", "", "x" * 201, 5),
        "version": pick(0, 7, 2**63 - 1, 2**63, -1, 1.5, True),
        "steps": pick(0, 3, -1, "1"),
        "fields": pick([field], [field, field], [], None, [[1, 2]], [field] * 40),
        "meta": pick({}, {"lag": 1}, {"a": float("inf")}, {"A": 1}, [], {"b": True}),
    }
    for key in list(fields):
        if fdp.ConsumeIntInRange(0, 7) == 0:
            del fields[key]
    return nested(fdp, json.dumps(fields).encode())


def check_frames(frames: list[bytes]) -> None:
    """``decode`` refuses with ``ProtocolError`` or decodes what encodes back the same."""
    try:
        message = wire.decode(frames, MAX_BYTES)
    except ProtocolError:
        return
    again = wire.decode([bytes(memoryview(f)) for f in wire.encode(message)], MAX_BYTES)
    if (again.kind, again.source, again.version, again.meta) != (
        message.kind, message.source, message.version, message.meta,
    ):  # fmt: skip
        raise Finding(f"header {message} comes back as {again}")
    for name, array in message.fields.items():
        if not np.array_equal(array, again.fields[name], equal_nan=True):
            raise Finding(f"field {name} does not come back the same")
    assembler = BatchAssembler(batch_size=1, max_lag=4)
    for _ in range(2):
        assembler.add(message, 3)
        assembler.take(3)
