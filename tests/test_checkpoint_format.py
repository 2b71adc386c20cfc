"""The HDF5 checkpoint format: every field round-trips; damaged files are refused by name."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from relaax_zmq.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_name,
    checksum,
    decode,
    encode,
    parse_name,
)
from relaax_zmq.checkpoint.naming import parse_temp_name, temp_name


def full_checkpoint(**changes: object) -> Checkpoint:
    """A checkpoint with every kind of field filled in."""
    rng = np.random.default_rng(7)
    fields: dict[str, object] = dict(
        global_step=123_456,
        shard=1,
        shards=3,
        offset=1000,
        params=rng.standard_normal(1000).astype(np.float32),
        param_count=3000,
        algorithm="da3c",
        optimizer={
            "m": rng.standard_normal(1000).astype(np.float32),
            "v": rng.random(1000).astype(np.float32),
            "step": np.array(42, dtype=np.int64),
        },
        counters={"global_step": 123_456, "episodes": 789, "big": 2**62},
        extras={
            "obs_mean": rng.standard_normal((4, 3)),
            "rng_state": rng.integers(0, 2**32, 624, dtype=np.uint32),
            "rng_bytes": np.frombuffer(b"\x00\x01\xfe\xff", dtype=np.uint8).copy(),
            "done": np.array([True, False]),
            "empty": np.zeros(0, dtype=np.float32),
        },
        score=-12.625,
        created=1_700_000_000.123456,
    )
    fields.update(changes)
    return Checkpoint(**fields)  # type: ignore[arg-type]


def assert_same(a: Checkpoint, b: Checkpoint) -> None:
    for name in ("global_step", "shard", "shards", "offset", "param_count", "algorithm"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.score == b.score and a.created == b.created and a.counters == b.counters
    for group in ("optimizer", "extras"):
        left, right = getattr(a, group), getattr(b, group)
        assert sorted(left) == sorted(right)
        for key in left:
            assert left[key].dtype == right[key].dtype and left[key].shape == right[key].shape
            np.testing.assert_array_equal(left[key], right[key])
    assert b.params.dtype == np.float32
    np.testing.assert_array_equal(a.params, b.params)


def write(tmp_path: Path, data: bytes, name: str = "ckpt.h5") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_every_field_round_trips_through_a_real_file(tmp_path: Path) -> None:
    original = full_checkpoint()
    path = write(tmp_path, encode(original))
    with h5py.File(path, "r") as f:  # a plain HDF5 file that h5py (or h5dump) can read
        assert f["params"].shape == (1000,) and f.attrs["global_step"] == 123_456
        assert f.attrs["checksum"] == checksum(original)
        assert f["counters"].attrs["episodes"] == 789
    assert_same(original, decode(path.read_bytes(), str(path)))


def test_no_score_and_no_extras_round_trip(tmp_path: Path) -> None:
    bare = full_checkpoint(score=None, optimizer={}, extras={}, counters={})
    assert_same(bare, decode(encode(bare), "bare"))
    assert full_checkpoint(score=float("nan")).score is None  # NaN counts as no score


def test_big_endian_arrays_are_stored_little_endian_with_the_same_checksum() -> None:
    little = full_checkpoint(extras={"x": np.arange(5, dtype="<f8")})
    big = full_checkpoint(extras={"x": np.arange(5, dtype=">f8")})
    assert checksum(little) == checksum(big)
    np.testing.assert_array_equal(decode(encode(big), "big").extras["x"], np.arange(5.0))


def flip_byte_in(path: Path, dataset: str, index: int = 10) -> None:
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    assert offset is not None
    data = bytearray(path.read_bytes())
    data[offset + index] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dataset", ["params", "optimizer/v", "extras/rng_state"])
def test_a_flipped_byte_in_a_dataset_is_a_checksum_mismatch(tmp_path: Path, dataset: str) -> None:
    path = write(tmp_path, encode(full_checkpoint()))
    flip_byte_in(path, dataset)
    with pytest.raises(CheckpointError, match="checksum mismatch") as caught:
        decode(path.read_bytes(), str(path))
    assert str(path) in str(caught.value)


def test_a_changed_attribute_is_a_checksum_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, encode(full_checkpoint()))
    with h5py.File(path, "r+") as f:
        f["counters"].attrs["episodes"] = 790
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        decode(path.read_bytes(), str(path))


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.05])
def test_a_truncated_file_is_refused(tmp_path: Path, keep: float) -> None:
    data = encode(full_checkpoint())
    path = write(tmp_path, data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated") as caught:
        decode(path.read_bytes(), str(path))
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"hello, not a checkpoint\n", b"\x00" * 4096])
def test_a_file_that_is_not_hdf5_is_refused(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(CheckpointError, match="not an HDF5 file") as caught:
        decode(path.read_bytes(), str(path))
    assert str(path) in str(caught.value)


def test_a_wrong_format_version_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, encode(full_checkpoint()))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(CheckpointError, match="wrong format version 99"):
        decode(path.read_bytes(), str(path))


def test_other_hdf5_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["params"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="not a relaax-zmq checkpoint"):
        decode(path.read_bytes(), str(path))


@pytest.mark.parametrize(
    ("victim", "message"),
    [("params", "missing dataset 'params'"), ("counters", "missing group 'counters'")],
)
def test_a_missing_dataset_is_named(tmp_path: Path, victim: str, message: str) -> None:
    path = write(tmp_path, encode(full_checkpoint()))
    with h5py.File(path, "r+") as f:
        del f[victim]
    with pytest.raises(CheckpointError, match=message):
        decode(path.read_bytes(), str(path))


def test_names_sort_by_step_and_parse_back() -> None:
    steps = [5, 40, 300, 2_000_000]
    names = [checkpoint_name(step, 2, 4) for step in reversed(steps)]
    assert [parse_name(name).global_step for name in sorted(names)] == steps  # type: ignore[union-attr]
    assert checkpoint_name(7, 0, 1) == "ckpt-000000000007-shard0of1.h5"
    assert parse_name("ckpt-000000000007-shard3of4.h5") == (7, 3, 4)
    tmp = temp_name(checkpoint_name(7, 3, 4), "123-ab")
    assert parse_name(tmp) is None and parse_temp_name(tmp) == (7, 3, 4)
    for other in ["ckpt-7-shard0of1.h5", "ckpt-000000000007-shard0of1.h5.bak", "x.h5"]:
        assert parse_name(other) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": np.zeros(3, np.float64)}, "1-D float32"),
        ({"params": np.zeros((2, 2), np.float32)}, "1-D float32"),
        ({"shard": 3}, "not in 0..2"),
        ({"offset": 2500}, "exceeds param_count"),
        ({"optimizer": {"a/b": np.zeros(1)}}, "HDF5 name"),
        ({"extras": {"s": np.array(["text"])}}, "bool, int or float"),
        ({"counters": {"episodes": 1.5}}, "expected an int"),
    ],
)
def test_invalid_checkpoints_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        full_checkpoint(**changes)
