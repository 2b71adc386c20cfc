"""Retention on disk: keep-N newest plus best-N, the newest valid always kept; atomic writes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from relaax_zmq.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    Inspection,
    LocalLocation,
    Status,
    checkpoint_name,
    encode,
    parse_name,
    to_delete,
)
from relaax_zmq.checkpoint.naming import temp_name
from relaax_zmq.config import CheckpointConfig


def make(step: int, score: float | None = None, shard: int = 0, shards: int = 1) -> Checkpoint:
    return Checkpoint(
        global_step=step,
        shard=shard,
        shards=shards,
        offset=0,
        params=np.full(16, step, dtype=np.float32),
        param_count=16,
        algorithm="test",
        optimizer={"m": np.full(16, -step, dtype=np.float32)},
        counters={"episodes": step * 2},
        score=score,
    )


def manager(directory: Path, keep: int = 5, keep_best: int = 0, **kw: object) -> CheckpointManager:
    config = CheckpointConfig(dir=directory, keep=keep, keep_best=keep_best, every_seconds=None)
    return CheckpointManager(config, **{"shard": 0, "shards": 1, **kw})  # type: ignore[arg-type]


def steps_on_disk(directory: Path, shard: int = 0, shards: int = 1) -> list[int]:
    found = [parse_name(path.name) for path in directory.iterdir()]
    return sorted(n.global_step for n in found if n and (n.shard, n.shards) == (shard, shards))


def corrupt(path: Path) -> None:
    """Flip a byte of the params dataset."""
    with h5py.File(path, "r") as f:
        offset = f["params"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))


def test_keep_n_newest(tmp_path: Path) -> None:
    saver = manager(tmp_path, keep=2)
    for step in range(1, 6):
        written = saver.save(make(step))
        assert written == [str(tmp_path / checkpoint_name(step, 0, 1))]
    assert steps_on_disk(tmp_path) == [4, 5]


def test_keep_n_newest_plus_best_n_by_score(tmp_path: Path) -> None:
    saver = manager(tmp_path, keep=2, keep_best=2)
    for step, score in enumerate([5.0, 1.0, 9.0, 2.0, 3.0, 0.0, None], start=1):
        saver.save(make(step, score))
    # newest 2: steps 6 and 7; best 2: step 3 (9.0) and step 1 (5.0)
    assert steps_on_disk(tmp_path) == [1, 3, 6, 7]


def test_best_n_are_read_back_from_files_written_by_an_earlier_process(tmp_path: Path) -> None:
    first = manager(tmp_path, keep=10)
    for step, score in enumerate([5.0, 1.0, 9.0, 2.0], start=1):
        first.save(make(step, score))
    second = manager(tmp_path, keep=1, keep_best=1)  # knows nothing about these files
    second.save(make(5, 0.0))
    assert steps_on_disk(tmp_path) == [3, 5]


def test_the_newest_valid_is_kept_even_with_the_worst_score(tmp_path: Path) -> None:
    saver = manager(tmp_path, keep=1, keep_best=1)
    for step, score in enumerate([10.0, 5.0, -100.0], start=1):
        saver.save(make(step, score))
    assert steps_on_disk(tmp_path) == [1, 3]


def test_a_corrupt_newest_file_does_not_count_as_valid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saver = manager(tmp_path, keep=1)
    saver.save(make(1))
    saver.save(make(2))
    bad = tmp_path / checkpoint_name(3, 0, 1)
    bad.write_bytes(encode(make(3)))
    corrupt(bad)
    with caplog.at_level(logging.WARNING):
        saver.prune()
    # step 2 is the newest valid one: kept although keep=1 and step 3 is newer
    assert steps_on_disk(tmp_path) == [2, 3]
    assert str(bad) in caplog.text and "checksum mismatch" in caplog.text
    assert saver.restore().global_step == 2  # type: ignore[union-attr]
    saver.save(make(4))  # a newer valid one supersedes the corrupt file
    assert steps_on_disk(tmp_path) == [4]


def test_a_file_whose_content_contradicts_its_name_is_not_valid(tmp_path: Path) -> None:
    saver = manager(tmp_path, keep=1)
    saver.save(make(1))
    (tmp_path / checkpoint_name(9, 0, 1)).write_bytes(encode(make(8)))
    restored = saver.restore()
    assert restored is not None and restored.global_step == 1


def test_other_shards_and_shard_counts_are_left_alone(tmp_path: Path) -> None:
    others = {(0, 2): manager(tmp_path, keep=5, shard=0, shards=2)}
    for step in (1, 2, 3):
        others[(0, 2)].save(make(step, shard=0, shards=2))
    saver = manager(tmp_path, keep=1, shard=1, shards=2)
    for step in (1, 2, 3):
        saver.save(make(step, shard=1, shards=2))
    assert steps_on_disk(tmp_path, 0, 2) == [1, 2, 3]
    assert steps_on_disk(tmp_path, 1, 2) == [3]
    with pytest.raises(CheckpointError, match="saves shard 1 of 2"):
        saver.save(make(4, shard=0, shards=2))


def test_retention_reads_only_what_it_needs() -> None:
    names = [(step, f"n{step}") for step in range(1, 8)]
    status = {"n7": Status.CORRUPT, "n6": Status.UNKNOWN}
    seen: list[str] = []

    def inspect(name: str) -> Inspection:
        seen.append(name)
        return Inspection(status.get(name, Status.VALID), score=None)

    doomed = to_delete(names, inspect, keep=2, keep_best=0)
    assert seen == ["n7", "n6", "n5", "n4"]  # stops at the 2nd valid one
    # n7: corrupt but newer than the newest valid (n5); n6: unreadable, kept
    assert sorted(doomed) == ["n1", "n2", "n3"]
    assert to_delete(names, lambda name: Inspection(Status.CORRUPT), keep=1, keep_best=1) == []


def test_stray_temporary_files_are_ignored_and_removed_on_the_next_save(tmp_path: Path) -> None:
    saver = manager(tmp_path)
    saver.save(make(1))
    name = checkpoint_name(2, 0, 1)
    stray = tmp_path / temp_name(name, "999-dead")
    stray.write_bytes(encode(make(2))[:5000])
    foreign = tmp_path / temp_name(checkpoint_name(2, 1, 2), "998-beef")  # another shard's
    foreign.write_bytes(b"partial")
    assert [entry.name for entry in LocalLocation(tmp_path).list()] == [checkpoint_name(1, 0, 1)]
    assert saver.restore().global_step == 1  # type: ignore[union-attr]
    saver.save(make(2))
    assert not stray.exists() and foreign.exists()
    assert steps_on_disk(tmp_path) == [1, 2]


def test_local_write_syncs_the_file_then_renames_then_syncs_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append(("replace", str(src)))
        assert Path(src).read_bytes() == b"payload"  # complete before it gets its name
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    location = LocalLocation(tmp_path / "new")
    location.write(checkpoint_name(1, 0, 1), b"payload")
    folder = str((tmp_path / "new").resolve())
    assert [kind for kind, _ in calls] == ["fsync", "replace", "fsync"]
    assert calls[0][1] == calls[1][1] and Path(calls[0][1]).name.endswith(".tmp")
    assert calls[2][1] == folder
    assert os.listdir(folder) == [checkpoint_name(1, 0, 1)]


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(CheckpointError, match="not saved anywhere.*Input/output error"):
        manager(tmp_path).save(make(1))
    assert os.listdir(tmp_path) == []


def test_no_location_means_no_checkpoint(tmp_path: Path) -> None:
    config = CheckpointConfig(dir=None, s3=None)
    saver = CheckpointManager(config, shard=0, shards=1)
    assert saver.save(make(1)) == [] and saver.restore() is None
    assert not saver.due(10**9, now=10**12)
