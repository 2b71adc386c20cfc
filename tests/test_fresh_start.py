"""fresh_start: an app's earlier run set aside by renaming its folders, nothing deleted."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from test_cli_support import new_bandit_app

from relaax_zmq.config import load_config
from relaax_zmq.config.parameter_servers import S3Config
from relaax_zmq.fresh_start import (
    FreshStartError,
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
        (checkpoints, checkpoints.with_name("checkpoints.previous-20261124-050000")),
        (metrics, metrics.with_name("metrics.previous-20261124-050000")),
    ]
    assert not checkpoints.exists() and not metrics.exists()
    assert (moves[0][1] / "ckpt-100-0.h5").read_bytes() == b"weights"
    assert (moves[1][1] / "events.out").read_bytes() == b"events"
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


def test_an_app_that_checkpoints_to_s3_is_refused(config) -> None:
    ps = config.parameter_servers
    checkpoint = dataclasses.replace(ps.checkpoint, s3=S3Config(bucket="runs", prefix="cartpole/"))
    config = dataclasses.replace(
        config, parameter_servers=dataclasses.replace(ps, checkpoint=checkpoint)
    )
    config.parameter_servers.checkpoint.dir.mkdir(parents=True)
    with pytest.raises(FreshStartError, match=r"s3://runs/cartpole/"):
        set_aside_previous_run(config)
    assert config.parameter_servers.checkpoint.dir.exists()


def test_a_metrics_folder_inside_the_checkpoint_folder_moves_with_it(config) -> None:
    checkpoints = config.parameter_servers.checkpoint.dir
    metrics = checkpoints / "metrics"
    config = dataclasses.replace(
        config, metrics=dataclasses.replace(config.metrics, logdir=metrics)
    )
    metrics.mkdir(parents=True)
    (metrics / "events.out").write_bytes(b"events")
    assert previous_run_folders(config) == [checkpoints]
    ((old, new),) = set_aside_previous_run(config, stamp="Y")
    assert (new / "metrics" / "events.out").read_bytes() == b"events"


def test_the_report_names_each_move_or_says_there_was_nothing(tmp_path) -> None:
    old = tmp_path / "checkpoints"
    assert set_aside_report([]) == "fresh start: no earlier run to set aside"
    report = set_aside_report([(old, old.with_name("checkpoints.previous-Z"))])
    assert report == f"earlier run set aside: {old} -> checkpoints.previous-Z"


def test_train_fresh_refuses_an_s3_app_before_starting_anything(tmp_path, capsys) -> None:
    from relaax_zmq.train import main

    path = new_bandit_app(tmp_path / "s3app")
    data = yaml.safe_load(path.read_text())
    data["parameter_servers"].setdefault("checkpoint", {})["s3"] = {"bucket": "runs"}
    path.write_text(yaml.safe_dump(data))
    checkpoints = load_config(path).parameter_servers.checkpoint.dir
    checkpoints.mkdir(parents=True)
    assert main(["--config", str(path), "--fresh"]) == 2
    assert "s3://runs/" in capsys.readouterr().err
    assert checkpoints.exists()
