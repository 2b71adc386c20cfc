"""MLflow and W&B receive what TensorBoard gets: a real collector, a real MLflow sqlite store
and a real offline W&B run in tmp_path, each read back with the library's own reader."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from test_metrics_collector import events, make_config, running, wait_for

from relaax_zmq.errors import ConfigError
from relaax_zmq.metrics import Collector, MetricsSender, names
from relaax_zmq.runtime.daemon import StopFlag

mlflow_tracking = pytest.importorskip("mlflow.tracking")
pytest.importorskip("wandb")

pytestmark = pytest.mark.timeout(120)

#: tag -> [(step, value, wall time)], sorted
Points = dict[str, list[tuple[int, float, float]]]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: W&B offline and quiet, neither library reports usage."""
    for name, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }.items():
        monkeypatch.setenv(name, value)


def tracked(tmp_path: Path, **metrics: Any) -> Any:
    """An app whose collector feeds an MLflow sqlite store and an offline W&B run in tmp_path."""
    sections = {
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "exp"},
        "wandb": {"project": "proj", "mode": "offline"},
    }
    return make_config(tmp_path, **{**sections, **metrics})


def tensorboard_points(run_dir: Path) -> Points:
    acc = events(run_dir)
    return {
        tag: sorted((e.step, e.value, e.wall_time) for e in acc.Scalars(tag))
        for tag in acc.Tags()["scalars"]
    }


def mlflow_points(config: Any) -> tuple[Any, Points]:
    """The one run of the app's experiment and its metric histories (wall time in ms)."""
    client = mlflow_tracking.MlflowClient(tracking_uri=config.metrics.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name("exp")
    (run,) = client.search_runs([experiment.experiment_id])
    return run, {
        tag: sorted(
            (m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, tag)
        )
        for tag in run.data.metrics
    }


def wandb_records(config: Any) -> list[dict[str, Any]]:
    """The records of the offline run's .wandb file, read by W&B's own reader."""
    (file,) = (config.metrics.logdir / "wandb").glob("offline-run-*/run-*.wandb")
    result = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def wandb_points(records: list[dict[str, Any]]) -> Points:
    points: defaultdict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for record in records:
        if record["type"] == "history":
            row = record["history"]["item"]
            for tag, value in row.items():
                if not tag.startswith("_") and tag != "step":
                    points[tag].append((row["step"], value, row["_timestamp"]))
    return {tag: sorted(found) for tag, found in points.items()}


def stopped() -> StopFlag:
    """A flag already set: a collector that starts returns at once instead of running on."""
    flag = StopFlag()
    flag.set()
    return flag


def send_some(config: Any) -> int:
    """Batches whose steps go back and forth (a worker's, a shard's, arrival-numbered client
    ones) and a histogram (TensorBoard only); the number of batches."""
    with MetricsSender.from_config(config, "worker-0") as worker:
        for step in (10, 20, 30):
            worker.scalar(names.POLICY_LOSS, step / 8)
            worker.scalar(names.ENTROPY, -step)
            worker.histogram(names.ACTIONS, [0.0, 1.0, 1.0])
            worker.flush(step=step)
        worker.send({names.STALENESS: 2.0}, step=5, source="ps-1")
        for reward in (9.5, 11.0):
            worker.send({names.EPISODE_REWARD: reward}, source="client-7")
    return 6


def test_mlflow_and_wandb_get_the_scalars_tensorboard_gets(tmp_path):
    config = tracked(tmp_path)
    assert config.metrics.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    with running(config) as collector:
        assert [sink.name for sink in collector.sinks] == ["mlflow", "wandb"]
        batches = send_some(config)
        wait_for(lambda: collector.counters.recorded == batches, f"{batches} batches")
    assert collector.stats()["sink_errors"] == 0
    tensorboard = tensorboard_points(collector.run_dir)
    assert tensorboard["worker/policy_loss"][-1][:2] == (30, 3.75)
    assert [p[:2] for p in tensorboard["client/episode_reward"]] == [(0, 9.5), (1, 11.0)]
    assert sorted(tensorboard) == [
        "client/episode_reward",
        "ps/staleness",
        "worker/entropy",
        "worker/policy_loss",
    ]
    run, mlflow = mlflow_points(config)
    assert (run.info.run_name, run.info.status) == ("tb", "FINISHED")  # logdir's name
    assert mlflow == {
        tag: [(step, value, round(wall_time * 1000)) for step, value, wall_time in points]
        for tag, points in tensorboard.items()
    }
    records = wandb_records(config)
    assert wandb_points(records) == tensorboard  # the steps went back: nothing dropped
    (header,) = [r["run"] for r in records if r["type"] == "run"]
    assert (header["project"], header["display_name"]) == ("proj", "tb")
    last = records[-1]  # the run finished cleanly (its runtime, in whole seconds, varies)
    assert last["type"] == "exit" and last["exit"]["exit_code"] == 0, last


def test_a_tag_mlflow_refuses_is_counted_and_the_others_still_arrive(tmp_path):
    config = tracked(tmp_path, wandb=None, flush_interval=0.1)
    with running(config) as collector:
        with MetricsSender.from_config(config, "worker-0") as sender:
            sender.send({"reward@100": 1.0, names.LOSS: 0.5}, step=1)
            wait_for(lambda: collector.counters.sink_errors == 1, "the refused flush")
            sender.send({names.LOSS: 0.25}, step=2)
        wait_for(lambda: collector.counters.recorded == 2, "2 batches")
    assert collector.stats()["sink_errors"] == 1  # the collector went on
    assert set(tensorboard_points(collector.run_dir)) == {"worker/reward@100", "worker/loss"}
    _, mlflow = mlflow_points(config)
    assert {tag: [p[:2] for p in points] for tag, points in mlflow.items()} == {
        "worker/loss": [(1, 0.5), (2, 0.25)]
    }


def test_disabled_trackers_write_nothing(tmp_path):
    config = tracked(
        tmp_path,
        mlflow={"enabled": False, "tracking_uri": "sqlite:///mlflow.db"},
        wandb={"enabled": False, "mode": "offline"},
    )
    with running(config) as collector:
        assert collector.sinks == []
        with MetricsSender.from_config(config, "worker-0") as sender:
            sender.send({names.LOSS: 0.5}, step=1)
        wait_for(lambda: collector.counters.recorded == 1, "the batch")
    assert tensorboard_points(collector.run_dir)["worker/loss"][0][:2] == (1, 0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tb"]
    assert [p.name for p in collector.run_dir.iterdir() if not p.name.startswith("events.")] == []


@pytest.mark.parametrize("extra", ["mlflow", "wandb"])
def test_a_tracker_without_its_extra_is_refused_before_any_run_starts(tmp_path, monkeypatch, extra):
    module = "mlflow.tracking" if extra == "mlflow" else "wandb"
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    collector = Collector(tracked(tmp_path))
    with pytest.raises(ConfigError) as info:
        collector.run(stopped())
    message = str(info.value)
    assert message.startswith(f"metrics.{extra}: needs the {extra} package")
    assert f"pip install 'relaax-zmq[{extra}]'" in message
    assert not (tmp_path / "mlflow.db").exists()
    assert not (collector.run_dir / "wandb").exists()
    assert not collector.ready.is_set()


def test_tracker_keys_are_checked_with_their_full_names(tmp_path):
    with pytest.raises(ConfigError, match=r"^metrics\.mlflow\.tracking_uri: expected a track"):
        tracked(tmp_path, mlflow={"tracking_uri": "mlruns"})
    with pytest.raises(ConfigError, match=r"^metrics\.wandb\.mode: expected one of 'online'"):
        tracked(tmp_path, wandb={"mode": "off"})
    with pytest.raises(ConfigError, match=r"^metrics\.wandb\.project: expected a non-empty name"):
        tracked(tmp_path, wandb={"project": " "})
    absolute = tracked(tmp_path, mlflow={"tracking_uri": "sqlite:////srv/m.db"}).metrics.mlflow
    assert absolute.tracking_uri == "sqlite:////srv/m.db"


def test_a_tracker_that_cannot_start_its_run_stops_the_collector_naming_its_key(tmp_path):
    (tmp_path / "a_file").write_text("")
    config = tracked(tmp_path, mlflow={"tracking_uri": "sqlite:///a_file/m.db"})
    collector = Collector(config)
    with pytest.raises(ConfigError, match=r"^metrics\.mlflow: cannot start the mlflow run: "):
        collector.run(stopped())
    assert not (collector.run_dir / "wandb").exists()  # W&B was not started either
    assert not collector.ready.is_set()
