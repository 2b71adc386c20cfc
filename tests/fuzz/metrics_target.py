"""Fuzz target ``metrics``: the metrics collector's batch decoder on arbitrary frames.

An input's last byte says whether its frames (``frames.take_frames``) go as they are or
with the header frame replaced by a JSON header built from chosen fields (versions,
sources, steps and times of every JSON type and size, keys missing, nested in arrays).
For every frame list: ``wire.decode_batch`` returns a batch or
raises ``BatchError``, nothing else (the collector catches nothing more around it); an
accepted batch, encoded again by ``encode_batch``, decodes to the same header, scalars
and histograms. Seeds: batches a sender makes (scalars, histograms, both, neither).
"""

from __future__ import annotations

import json
from typing import Any

import atheris
import numpy as np

from relaax_zmq.metrics.wire import Batch, BatchError, decode_batch, encode_batch
from relaax_zmq.protocol.limits import Limits

from .frames import Finding, join_frames, nested, take_frames

#: Limits small enough that the fuzzer reaches them.
LIMITS = Limits(max_elements=4096, max_tensors=8, max_sessions=8)
MAX_BYTES = 1 << 16


def seeds() -> list[bytes]:
    batches = [
        encode_batch("worker-0", 12, {"episode_reward": 1.5, "loss": -0.25}, time=1.7e9),
        encode_batch("ps-1", None, None, {"weights": [0.5, 1.0, 2.0]}, time=0.0),
        encode_batch("client-a:1", 3, {"x": float("nan")}, {"h": [], "g": [1.0]}, session_id=7),
        encode_batch("worker-1", 0, time=1.0),
    ]
    return [join_frames([bytes(memoryview(f)) for f in b]) + b"\0" for b in batches]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    built = fdp.ConsumeIntInRange(0, 1) == 1  # the last byte (ConsumeBool reads the first)
    frames = take_frames(fdp)
    if built and frames:
        frames[0] = header(fdp)
    check_frames(frames)


def header(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A JSON header frame from chosen values (any of them may be wrong)."""
    big = 10**400

    def pick(*options: Any) -> Any:
        return options[fdp.ConsumeIntInRange(0, len(options) - 1)]

    fields = {
        "version": pick(1, 1, 0, 2, True, 1.0, None, "1"),
        "source": pick("worker-0", "ps-1", "", "x" * 201, "a b", fdp.ConsumeUnicode(12)),
        "step": pick(None, 0, 7, 2**63 - 1, 2**63, -1, big, 1.5, True, "1"),
        "time": pick(0, 1.7e9, -1.0, big, -big, float("inf"), float("nan"), "now", None, True),
    }
    for key in list(fields):
        if fdp.ConsumeIntInRange(0, 7) == 0:
            del fields[key]
    return nested(fdp, json.dumps(fields).encode())


def check_frames(frames: list[bytes]) -> None:
    """``decode_batch`` refuses with ``BatchError`` or decodes what encodes back the same."""
    try:
        batch = decode_batch(frames, LIMITS, MAX_BYTES)
    except BatchError:
        return
    h = batch.header
    again = encode_batch(
        h.source,
        h.step,
        batch.scalars,
        batch.histograms,
        time=h.time,
        session_id=batch.session_id,
        limits=LIMITS,
    )
    _same(batch, decode_batch([bytes(memoryview(f)) for f in again], LIMITS))


def _same(a: Batch, b: Batch) -> None:
    if (a.header, a.session_id) != (b.header, b.session_id):
        raise Finding(f"header {a.header} {a.session_id} comes back as {b.header} {b.session_id}")
    if list(a.scalars) != list(b.scalars) or not np.array_equal(
        list(a.scalars.values()), list(b.scalars.values()), equal_nan=True
    ):
        raise Finding(f"scalars {a.scalars} come back as {b.scalars}")
    if list(a.histograms) != list(b.histograms) or not all(
        np.array_equal(a.histograms[k], b.histograms[k], equal_nan=True) for k in a.histograms
    ):
        raise Finding(f"histograms {a.histograms} come back as {b.histograms}")
