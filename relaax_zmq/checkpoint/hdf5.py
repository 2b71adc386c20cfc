"""The HDF5 file format of a checkpoint: encode to bytes, decode and verify from bytes.

Layout (docs/checkpoints.md): datasets ``/params``, ``/optimizer/<name>``, ``/extras/<name>``;
root attributes for the scalars; group ``/counters`` with one int attribute per counter; root
attributes ``format``, ``format_version`` and ``checksum`` (SHA-256, see ``checksum``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from relaax_zmq.checkpoint.errors import CheckpointError
from relaax_zmq.checkpoint.record import Checkpoint

FORMAT = "relaax-zmq-checkpoint"
FORMAT_VERSION = 1
#: The first 8 bytes of every HDF5 file (written without a user block).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_INTS = ("global_step", "shard", "shards", "offset", "param_count")


def metadata(ckpt: Checkpoint) -> dict[str, Any]:
    """Every non-array field of ``ckpt``, as the checksum's JSON sees it."""
    meta: dict[str, Any] = {name: getattr(ckpt, name) for name in _INTS}
    meta.update(
        format_version=FORMAT_VERSION,
        algorithm=ckpt.algorithm,
        score=ckpt.score,
        created=ckpt.created,
        counters=dict(ckpt.counters),
    )
    return meta


def _arrays(ckpt: Checkpoint) -> Iterator[tuple[str, np.ndarray]]:
    """(HDF5 path, array) in canonical order: params, optimizer by name, extras by name."""
    yield "params", ckpt.params
    for group in ("optimizer", "extras"):
        arrays: dict[str, np.ndarray] = getattr(ckpt, group)
        for name in sorted(arrays):
            yield f"{group}/{name}", arrays[name]


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def checksum(ckpt: Checkpoint) -> str:
    """``sha256:<hex>`` over the metadata JSON and every array's header line and bytes."""
    digest = hashlib.sha256(f"{FORMAT}/{FORMAT_VERSION}\n".encode())
    meta = json.dumps(metadata(ckpt), sort_keys=True, separators=(",", ":"), allow_nan=True)
    digest.update(meta.encode() + b"\n")
    for path, array in _arrays(ckpt):
        array = _little_endian(array)
        shape = ",".join(str(n) for n in array.shape)
        digest.update(f"{path} {array.dtype.str} {shape}\n".encode())
        digest.update(memoryview(array).cast("B"))
    return "sha256:" + digest.hexdigest()


def encode(ckpt: Checkpoint) -> bytes:
    """The complete HDF5 file of ``ckpt``, checksum included."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        for name in _INTS:
            f.attrs[name] = np.int64(getattr(ckpt, name))
        f.attrs["algorithm"] = ckpt.algorithm
        f.attrs["created"] = np.float64(ckpt.created)
        if ckpt.score is not None:
            f.attrs["score"] = np.float64(ckpt.score)
        counters = f.create_group("counters")
        for name, value in ckpt.counters.items():
            counters.attrs[name] = np.int64(value)
        f.create_group("optimizer")
        f.create_group("extras")
        for path, array in _arrays(ckpt):
            f.create_dataset(path, data=_little_endian(array))
        f.attrs["checksum"] = checksum(ckpt)
    return buffer.getvalue()


def decode(data: bytes, source: str) -> Checkpoint:
    """The checkpoint in ``data`` after verifying it; ``source`` names the file in errors."""
    if data[:8] != HDF5_SIGNATURE:
        raise CheckpointError(
            f"{source}: not an HDF5 file ({len(data)} bytes, no HDF5 signature at offset 0)"
        )
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except OSError as exc:
        fault = "truncated" if "truncated" in str(exc) else "unreadable HDF5"
        raise CheckpointError(f"{source}: {fault} ({len(data)} bytes): {exc}") from exc
    try:
        with f:
            ckpt, stored = _read(f)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: damaged HDF5 ({len(data)} bytes): {exc}") from exc
    computed = checksum(ckpt)
    if stored != computed:
        raise CheckpointError(f"{source}: checksum mismatch (stored {stored}, computed {computed})")
    return ckpt


def _read(f: h5py.File) -> tuple[Checkpoint, str]:
    """The checkpoint in an open file (not yet verified) and its stored checksum."""
    attrs = f.attrs
    kind = _text(attrs.get("format"))
    if kind != FORMAT:
        raise CheckpointError(f"not a relaax-zmq checkpoint (format attribute {kind!r})")
    version = attrs.get("format_version")
    if version is None:
        raise CheckpointError("missing attribute 'format_version'")
    if int(version) != FORMAT_VERSION:
        raise CheckpointError(
            f"wrong format version {int(version)} (this reader reads {FORMAT_VERSION})"
        )
    for name in (*_INTS, "algorithm", "created", "checksum"):
        if name not in attrs:
            raise CheckpointError(f"missing attribute {name!r}")
    for path in ("params", "optimizer", "extras", "counters"):
        if path not in f:
            raise CheckpointError(f"missing {'dataset' if path == 'params' else 'group'} {path!r}")
    ckpt = Checkpoint(
        **{name: int(attrs[name]) for name in _INTS},
        algorithm=_text(attrs["algorithm"]),
        created=float(attrs["created"]),
        score=float(attrs["score"]) if "score" in attrs else None,
        params=_dataset(f, "params"),
        optimizer={name: _dataset(f["optimizer"], name) for name in f["optimizer"]},
        extras={name: _dataset(f["extras"], name) for name in f["extras"]},
        counters={name: int(value) for name, value in f["counters"].attrs.items()},
    )
    return ckpt, _text(attrs["checksum"])


def _dataset(group: h5py.Group, name: str) -> np.ndarray:
    node = group[name]
    if not isinstance(node, h5py.Dataset):
        raise CheckpointError(f"{node.name!r} is not a dataset")
    return np.array(node[()], dtype=node.dtype.newbyteorder("="))


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)
