"""fresh_start: an app's earlier run set aside by renaming its folders and moving its S3
checkpoints to a sibling prefix (boto3 against moto on loopback), nothing deleted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from test_cli_support import new_bandit_app

from relaax_zmq.checkpoint import Checkpoint, CheckpointManager, checkpoint_name
from relaax_zmq.config import CheckpointConfig, load_config
from relaax_zmq.config.parameter_servers import S3Config
from relaax_zmq.runtime.fresh_start import (
    FreshStartError,
    SetAside,
    previous_prefix,
    previous_run_folders,
    set_aside_previous_run,
    set_aside_report,
)


@pytest.fixture
def config(tmp_path):
    return load_config(new_bandit_app(tmp_path / "app"))


def test_the_checkpoint_and_metrics_folders_are_renamed_with_their_files(config) -> None:
    checkpoints = config.parameter_servers.checkpoint.dir
    metrics = config.metrics.logdir
    checkpoints.mkdir(parents=True)
    (checkpoints / "ckpt-100-0.h5").write_bytes(b"weights")
    metrics.mkdir(parents=True)
    (metrics / "events.out").write_bytes(b"events")
    moves = set_aside_previous_run(config, stamp="20261124-050000")
    assert moves == [
        SetAside(str(checkpoints), "checkpoints.previous-20261124-050000"),
        SetAside(str(metrics), "metrics.previous-20261124-050000"),
    ]
    assert not checkpoints.exists() and not metrics.exists()
    previous = checkpoints.with_name("checkpoints.previous-20261124-050000")
    assert (previous / "ckpt-100-0.h5").read_bytes() == b"weights"
    assert (metrics.with_name(moves[1].new) / "events.out").read_bytes() == b"events"
    assert previous_run_folders(config) == []


def test_nothing_to_set_aside_before_a_first_run(config) -> None:
    assert set_aside_previous_run(config) == []


def test_a_taken_name_is_refused_before_anything_moves(config) -> None:
    checkpoints = config.parameter_servers.checkpoint.dir
    metrics = config.metrics.logdir
    checkpoints.mkdir(parents=True)
    metrics.mkdir(parents=True)
    metrics.with_name("metrics.previous-X").mkdir()
    with pytest.raises(FreshStartError, match=r"metrics\.previous-X exists already"):
        set_aside_previous_run(config, stamp="X")
    assert checkpoints.exists() and metrics.exists()


def test_a_failed_rename_is_a_fresh_start_error_naming_the_folder(config, monkeypatch) -> None:
    checkpoints = config.parameter_servers.checkpoint.dir
    checkpoints.mkdir(parents=True)

    def refuse(self, target):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(type(checkpoints), "rename", refuse)
    with pytest.raises(FreshStartError, match=rf"cannot rename {checkpoints} to checkpoints"):
        set_aside_previous_run(config, stamp="R")
    assert checkpoints.exists()


def test_a_metrics_folder_inside_the_checkpoint_folder_moves_with_it(config) -> None:
    checkpoints = config.parameter_servers.checkpoint.dir
    metrics = checkpoints / "metrics"
    config = dataclasses.replace(
        config, metrics=dataclasses.replace(config.metrics, logdir=metrics)
    )
    metrics.mkdir(parents=True)
    (metrics / "events.out").write_bytes(b"events")
    assert previous_run_folders(config) == [checkpoints]
    (move,) = set_aside_previous_run(config, stamp="Y")
    assert move == SetAside(str(checkpoints), "checkpoints.previous-Y")
    assert (checkpoints.with_name(move.new) / "metrics" / "events.out").read_bytes() == b"events"


def test_the_report_names_each_move_or_says_there_was_nothing(tmp_path) -> None:
    old = tmp_path / "checkpoints"
    assert set_aside_report([]) == "fresh start: no earlier run to set aside"
    report = set_aside_report([SetAside(str(old), "checkpoints.previous-Z")])
    assert report == f"earlier run set aside: {old} -> checkpoints.previous-Z"


# -- S3 ------------------------------------------------------------------------------------------


def with_s3(config, s3: S3Config):
    """``config`` checkpointing to ``s3`` as well as to its folder."""
    ps = config.parameter_servers
    checkpoint = dataclasses.replace(ps.checkpoint, s3=s3)
    return dataclasses.replace(
        config, parameter_servers=dataclasses.replace(ps, checkpoint=checkpoint)
    )


def s3_objects(client, bucket: str) -> dict[str, bytes]:
    reply = client.list_objects_v2(Bucket=bucket)
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in reply.get("Contents", ())
    }


def test_previous_prefix_is_a_sibling_of_the_prefix() -> None:
    assert previous_prefix("runs/a/", "S") == "runs/a.previous-S/"
    assert previous_prefix("runs/a", "S") == "runs/a.previous-S/"
    assert previous_prefix("", "S") == "previous-S/"


def test_s3_checkpoints_move_to_a_sibling_prefix_with_the_folders(
    config, endpoint, bucket, client
) -> None:
    s3 = S3Config(bucket=bucket, prefix="runs/a", endpoint_url=endpoint, region="us-east-1")
    config = with_s3(config, s3)
    names = [checkpoint_name(100, 0, 1), checkpoint_name(200, 0, 1)]
    for i, name in enumerate(names):
        client.put_object(Bucket=bucket, Key=f"runs/a/{name}", Body=b"weights %d" % i)
    client.put_object(Bucket=bucket, Key="runs/a/notes.txt", Body=b"mine")  # not a checkpoint
    config.parameter_servers.checkpoint.dir.mkdir(parents=True)
    moves = set_aside_previous_run(config, stamp="S", s3_client=client)
    assert moves[0] == SetAside(
        f"s3://{bucket}/runs/a/", f"s3://{bucket}/runs/a.previous-S/", " (2 checkpoints)"
    )
    assert moves[1] == SetAside(
        str(config.parameter_servers.checkpoint.dir), "checkpoints.previous-S"
    )
    assert s3_objects(client, bucket) == {
        "runs/a/notes.txt": b"mine",
        f"runs/a.previous-S/{names[0]}": b"weights 0",
        f"runs/a.previous-S/{names[1]}": b"weights 1",
    }
    assert "(2 checkpoints)" in set_aside_report(moves)
    assert set_aside_previous_run(config, stamp="T", s3_client=client) == []  # nothing left


def test_a_taken_s3_prefix_is_refused_before_anything_moves(
    config, endpoint, bucket, client
) -> None:
    config = with_s3(config, S3Config(bucket=bucket, prefix="runs/a", endpoint_url=endpoint))
    name = checkpoint_name(100, 0, 1)
    client.put_object(Bucket=bucket, Key=f"runs/a/{name}", Body=b"new")
    client.put_object(Bucket=bucket, Key=f"runs/a.previous-S/{name}", Body=b"old")
    config.parameter_servers.checkpoint.dir.mkdir(parents=True)
    with pytest.raises(FreshStartError, match=r"runs/a\.previous-S/ holds checkpoints already"):
        set_aside_previous_run(config, stamp="S", s3_client=client)
    assert s3_objects(client, bucket)[f"runs/a/{name}"] == b"new"
    assert config.parameter_servers.checkpoint.dir.exists()


def test_an_s3_failure_moves_nothing_and_says_why(config, endpoint, client) -> None:
    config = with_s3(config, S3Config(bucket="no-such-bucket", endpoint_url=endpoint))
    config.parameter_servers.checkpoint.dir.mkdir(parents=True)
    with pytest.raises(FreshStartError, match=r"s3://no-such-bucket/ aside: .*NoSuchBucket"):
        set_aside_previous_run(config, s3_client=client)
    assert config.parameter_servers.checkpoint.dir.exists()


def test_train_fresh_exits_2_when_s3_fails_before_starting_anything(
    tmp_path, endpoint, capsys
) -> None:
    from relaax_zmq.runtime.train import main

    path = new_bandit_app(tmp_path / "s3app")
    data = yaml.safe_load(path.read_text())
    s3 = {"bucket": "no-such-bucket", "endpoint_url": endpoint, "region": "us-east-1"}
    data["parameter_servers"].setdefault("checkpoint", {})["s3"] = s3
    path.write_text(yaml.safe_dump(data))
    checkpoints = load_config(path).parameter_servers.checkpoint.dir
    checkpoints.mkdir(parents=True)
    assert main(["--config", str(path), "--fresh"]) == 2
    assert "s3://no-such-bucket/" in capsys.readouterr().err
    assert checkpoints.exists()


def test_shards_restore_nothing_after_a_fresh_start_and_the_moved_checkpoints_stay_whole(
    config, endpoint, bucket, client
) -> None:
    """What a shard restores: before the set-aside the newest S3 checkpoint; after it
    nothing (training starts over); from the new prefix, the same checkpoint, intact."""
    s3 = S3Config(bucket=bucket, prefix="runs/a", endpoint_url=endpoint, region="us-east-1")
    checkpoint = CheckpointConfig(dir=None, s3=s3)
    saved = Checkpoint(
        global_step=500,
        shard=0,
        shards=1,
        offset=0,
        params=np.arange(8, dtype=np.float32),
        param_count=8,
        algorithm="test",
    )
    CheckpointManager(checkpoint, shard=0, shards=1, s3_client=client).save(saved)

    def restore(prefix: str):
        moved = CheckpointConfig(dir=None, s3=dataclasses.replace(s3, prefix=prefix))
        return CheckpointManager(moved, shard=0, shards=1, s3_client=client).restore()

    assert restore("runs/a").global_step == 500
    set_aside_previous_run(with_s3(config, s3), stamp="S", s3_client=client)
    assert restore("runs/a") is None
    restored = restore("runs/a.previous-S")
    assert restored.global_step == 500
    np.testing.assert_array_equal(restored.params, saved.params)
