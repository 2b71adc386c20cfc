"""S3 checkpoints through boto3 against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from relaax_zmq.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    LocalLocation,
    S3Location,
    checkpoint_name,
    encode,
    latest_complete_step,
    load_keys_file,
    parse_name,
)
from relaax_zmq.config import CheckpointConfig, S3Config


def s3_config(endpoint: str, bucket: str, **kw: Any) -> S3Config:
    return S3Config(bucket=bucket, prefix="runs/a", endpoint_url=endpoint, region="us-east-1", **kw)


def make(step: int, score: float | None = None, shard: int = 0, shards: int = 1) -> Checkpoint:
    return Checkpoint(
        global_step=step,
        shard=shard,
        shards=shards,
        offset=0,
        params=np.full(1000, step, dtype=np.float32),
        param_count=1000,
        algorithm="test",
        optimizer={"v": np.full(1000, step / 2, dtype=np.float32)},
        extras={"rng": np.arange(step, dtype=np.uint32)},
        counters={"episodes": step},
        score=score,
    )


def keys(client: Any, bucket: str) -> list[str]:
    reply = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in reply.get("Contents", ()))


def corrupt(path: Path) -> None:
    with h5py.File(path, "r") as f:
        offset = f["params"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_location_puts_lists_gets_and_deletes(endpoint: str, bucket: str, client: Any) -> None:
    location = S3Location(s3_config(endpoint, bucket), client=client)
    name = checkpoint_name(3, 0, 1)
    data = encode(make(3))
    location.write(name, data)
    client.put_object(Bucket=bucket, Key="runs/a/notes.txt", Body=b"x")
    client.put_object(Bucket=bucket, Key="runs/ab/" + name, Body=b"x")  # another prefix
    assert location.uri(name) == f"s3://{bucket}/runs/a/{name}"
    assert location.list() == [(name, len(data))]
    assert location.read(name) == data
    location.delete(name)
    assert location.list() == []


def test_large_objects_go_up_whole(endpoint: str, bucket: str, client: Any) -> None:
    location = S3Location(s3_config(endpoint, bucket), client=client)
    data = os.urandom(20 * 2**20)  # multipart above 8 MiB
    location.write("ckpt-000000000001-shard0of1.h5", data)
    assert location.read("ckpt-000000000001-shard0of1.h5") == data


def test_manager_saves_prunes_and_restores_in_s3(endpoint: str, bucket: str, client: Any) -> None:
    config = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket), keep=2, keep_best=1)
    saver = CheckpointManager(config, shard=0, shards=1, s3_client=client)
    for step, score in enumerate([7.0, 1.0, 2.0, 3.0], start=1):
        assert saver.save(make(step, score)) == [
            f"s3://{bucket}/runs/a/{checkpoint_name(step, 0, 1)}"
        ]
    assert keys(client, bucket) == [f"runs/a/{checkpoint_name(s, 0, 1)}" for s in (1, 3, 4)]
    fresh = CheckpointManager(config, shard=0, shards=1, s3_client=client)
    restored = fresh.restore()
    assert restored is not None and restored.global_step == 4 and restored.score == 3.0
    np.testing.assert_array_equal(restored.extras["rng"], np.arange(4, dtype=np.uint32))


def test_restore_picks_the_newest_that_is_only_in_s3(
    endpoint: str, bucket: str, client: Any, tmp_path: Path
) -> None:
    both = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, bucket))
    saver = CheckpointManager(both, shard=0, shards=1, s3_client=client)
    saver.save(make(1))
    saver.save(make(2))
    s3_only = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket))
    CheckpointManager(s3_only, shard=0, shards=1, s3_client=client).save(make(3))
    restored = CheckpointManager(both, shard=0, shards=1, s3_client=client).restore()
    assert restored is not None and restored.global_step == 3
    np.testing.assert_array_equal(restored.params, np.full(1000, 3, dtype=np.float32))


def test_restore_falls_back_when_the_newest_on_disk_is_corrupt(
    endpoint: str, bucket: str, client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    both = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, bucket))
    saver = CheckpointManager(both, shard=0, shards=1, s3_client=client)
    for step in (1, 2, 3):
        saver.save(make(step))
    client.delete_object(Bucket=bucket, Key=f"runs/a/{checkpoint_name(3, 0, 1)}")
    corrupt(tmp_path / checkpoint_name(3, 0, 1))
    with caplog.at_level(logging.WARNING):
        restored = CheckpointManager(both, shard=0, shards=1, s3_client=client).restore()
    assert restored is not None and restored.global_step == 2
    assert str(tmp_path / checkpoint_name(3, 0, 1)) in caplog.text
    assert "checksum mismatch" in caplog.text


def test_a_corrupt_disk_copy_is_replaced_by_the_s3_copy_of_the_same_step(
    endpoint: str, bucket: str, client: Any, tmp_path: Path
) -> None:
    both = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, bucket))
    saver = CheckpointManager(both, shard=0, shards=1, s3_client=client)
    saver.save(make(1))
    saver.save(make(2))
    corrupt(tmp_path / checkpoint_name(2, 0, 1))
    (tmp_path / checkpoint_name(1, 0, 1)).unlink()
    restored = CheckpointManager(both, shard=0, shards=1, s3_client=client).restore()
    assert restored is not None and restored.global_step == 2


def test_a_failing_location_does_not_stop_the_others(
    endpoint: str, client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, "no-such-bucket"))
    saver = CheckpointManager(missing, shard=0, shards=1, s3_client=client)
    with caplog.at_level(logging.ERROR):
        written = saver.save(make(1))
    assert written == [str(tmp_path / checkpoint_name(1, 0, 1))]
    assert [where for where, _ in saver.last_failures] == ["s3://no-such-bucket/runs/a/"]
    assert "NoSuchBucket" in saver.last_failures[0][1] and "no-such-bucket" in caplog.text
    assert saver.restore().global_step == 1  # type: ignore[union-attr]

    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    neither = CheckpointConfig(dir=blocked, s3=s3_config(endpoint, "no-such-bucket"))
    saver = CheckpointManager(neither, shard=0, shards=1, s3_client=client)
    with pytest.raises(CheckpointError, match="not saved anywhere"):
        saver.save(make(2))
    assert len(saver.last_failures) == 2


def test_latest_complete_step_spans_disk_and_s3(
    endpoint: str, bucket: str, client: Any, tmp_path: Path
) -> None:
    disk = CheckpointConfig(dir=tmp_path, keep=10)
    s3 = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket), keep=10)
    first = CheckpointManager(disk, shard=0, shards=2)
    second = CheckpointManager(s3, shard=1, shards=2, s3_client=client)
    for step in (5, 7):
        first.save(make(step, shard=0, shards=2))
    second.save(make(5, shard=1, shards=2))
    second.save(make(6, shard=1, shards=2))
    both = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, bucket))
    assert latest_complete_step(both, 2, s3_client=client) == 5
    assert latest_complete_step(disk, 2) is None
    shard0 = CheckpointManager(both, shard=0, shards=2, s3_client=client)
    assert shard0.latest_complete_step() == 5
    restored = shard0.restore(step=5)
    assert restored is not None and restored.global_step == 5
    assert shard0.restore(step=6) is None


def write_keys(path: Path, mode: int, text: str | None = None) -> Path:
    path.write_text(text or "access_key_id: testing\nsecret_access_key: testing\n")
    path.chmod(mode)
    return path


def test_keys_file_supplies_the_credentials(
    endpoint: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    without = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket))
    with pytest.raises(CheckpointError, match="NoCredentialsError"):
        CheckpointManager(without, shard=0, shards=1).save(make(1))

    keys_file = write_keys(tmp_path / "s3.keys", 0o600)
    config = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket, keys_file=keys_file))
    saver = CheckpointManager(config, shard=0, shards=1)
    assert saver.save(make(1)) == [f"s3://{bucket}/runs/a/{checkpoint_name(1, 0, 1)}"]
    assert saver.restore().global_step == 1  # type: ignore[union-attr]


def test_a_world_readable_keys_file_is_refused(endpoint: str, bucket: str, tmp_path: Path) -> None:
    keys_file = write_keys(tmp_path / "s3.keys", 0o644)
    config = CheckpointConfig(dir=None, s3=s3_config(endpoint, bucket, keys_file=keys_file))
    with pytest.raises(CheckpointError, match=r"accessible by every user \(mode 0644\).*chmod 600"):
        CheckpointManager(config, shard=0, shards=1)
    keys_file.chmod(0o640)  # group-readable is allowed
    assert load_keys_file(keys_file) == {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("access_key_id: a\n", "'secret_access_key' must be a non-empty string"),
        ("access_key_id: a\nsecret_access_key: b\nregion: x\n", "unknown keys \\['region'\\]"),
        ("- a\n- b\n", "expected 'key: value' lines"),
        ("access_key_id: [a\n", "unreadable"),
    ],
)
def test_bad_keys_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = write_keys(tmp_path / "s3.keys", 0o600, text)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_keys_file(path)
    assert str(path) in str(caught.value)


def test_session_token_is_optional(tmp_path: Path) -> None:
    path = write_keys(
        tmp_path / "s3.keys", 0o600, "access_key_id: a\nsecret_access_key: b\nsession_token: c\n"
    )
    assert load_keys_file(path)["session_token"] == "c"


def test_disk_and_s3_hold_the_same_bytes(
    endpoint: str, bucket: str, client: Any, tmp_path: Path
) -> None:
    both = CheckpointConfig(dir=tmp_path, s3=s3_config(endpoint, bucket))
    CheckpointManager(both, shard=0, shards=1, s3_client=client).save(make(9, 1.5))
    name = checkpoint_name(9, 0, 1)
    s3_bytes = S3Location(s3_config(endpoint, bucket), client=client).read(name)
    assert s3_bytes == LocalLocation(tmp_path).read(name)
    assert parse_name(name) == (9, 0, 1)
