"""The relaax-zmq commands that need no running daemons, driven as a user runs them."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli_support import cli, edit_app, new_bandit_app

from relaax_zmq.cli.main import COMMANDS
from relaax_zmq.cli.scaffold import rewrite_imports
from relaax_zmq.config import load_config

pytestmark = pytest.mark.timeout(300)


def test_every_subcommand_has_help_and_usage_errors_exit_2() -> None:
    from relaax_zmq.cli.main import main

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0, command
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--clients", "many"])
    assert exit_info.value.code == 2
    bad = cli("frobnicate")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    top = subprocess.run(
        [Path(sys.executable).parent / "relaax-zmq", "--help"], capture_output=True, text=True
    )
    assert top.returncode == 0 and "checkpoints" in top.stdout  # the console script


def test_new_makes_a_bandit_app_that_loads(tmp_path) -> None:
    result = cli("new", tmp_path / "app")
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "app" / "app.yaml")
    assert config.environment.run.endswith("bandit.py:BanditEnv")
    assert config.algorithm.name == "reinforce"
    code = (tmp_path / "app" / "bandit.py").read_text()
    assert "from relaax_zmq.envs.gym_runner import GymRunner" in code  # runs outside the package
    again = cli("new", tmp_path / "app")
    assert again.returncode == 1 and "not empty" in again.stderr


def test_new_with_a_gym_id_and_an_algorithm_fits_the_spaces(tmp_path) -> None:
    result = cli("new", tmp_path / "pend", "-a", "ppo", "-e", "Pendulum-v1")
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "pend" / "app.yaml")
    assert config.environment.name == "Pendulum-v1" and config.algorithm.name == "ppo"
    assert config.algorithm.config["output"] == {"low": [-2.0], "high": [2.0]}
    walk = cli("new", tmp_path / "walk", "-a", "da3c", "-e", "template")
    assert walk.returncode == 0, walk.stderr
    config = load_config(tmp_path / "walk" / "app.yaml")
    assert config.environment.run.endswith("template.py:WalkRunner")
    assert not config.environment.vectorized and config.algorithm.config["output"] == {"actions": 2}
    unknown = cli("new", tmp_path / "x", "-a", "sarsa")
    assert unknown.returncode == 1 and "installed: apex, appo, cem, da3c" in unknown.stderr


def test_generate_copies_an_algorithm_that_the_app_then_loads_by_path(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    result = cli("generate", "-a", "reinforce", "-c", app)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "app" / "algorithms" / "reinforce"
    agent = (folder / "agent.py").read_text()
    assert "from relaax_zmq.algorithms.common.agent import" in agent
    assert "from .config import" in agent  # imports inside the copy stay relative
    config = load_config(app)
    assert config.algorithm.name is None and config.algorithm.path == folder
    from relaax_zmq.runtime.registry import load_algorithm

    algorithm = load_algorithm(config.algorithm)  # the copy's declaration, by path
    assert algorithm.name == "reinforce"
    assert Path(sys.modules[algorithm.agent.__module__].__file__).parent == folder
    twice = cli("generate", "-a", "reinforce", "-c", app)
    assert twice.returncode == 1 and "--force" in twice.stderr


def test_generate_an_environment_points_the_app_at_the_copy(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    result = cli("generate", "-e", "template", "-c", app)
    assert result.returncode == 0, result.stderr
    config = load_config(app)
    assert config.environment.run == f"{tmp_path / 'app' / 'template.py'}:WalkRunner"
    assert config.algorithm.config["output"] == {"actions": 2}


def test_relative_imports_leaving_a_copy_become_absolute() -> None:
    source = "from .config import A\nfrom ..common.agent import (\n    B,\n)\nfrom . import x\n"
    out = rewrite_imports(source, "relaax_zmq.algorithms.da3c", 1)
    assert out == (
        "from .config import A\nfrom relaax_zmq.algorithms.common.agent import (\n    B,\n)\n"
        "from . import x\n"
    )
    single = rewrite_imports("from .gym_runner import G\n", "relaax_zmq.envs", 0)
    assert single == "from relaax_zmq.envs.gym_runner import G\n"


def test_config_lists_presets_and_applies_one(tmp_path) -> None:
    listed = cli("config", "-l", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {p["name"] for p in json.loads(listed.stdout)["presets"]}
    assert {"cartpole", "bandit-reinforce", "pendulum-ppo"} <= names
    app = new_bandit_app(tmp_path / "app")
    before = load_config(app)
    applied = cli("config", "-a", "cartpole-ppo", "-c", app)
    assert applied.returncode == 0, applied.stderr
    after = load_config(app)
    assert after.algorithm.name == "ppo" and after.environment.name == "CartPole-v1"
    assert after.broker.frontend == before.broker.frontend  # the app's own sections stay
    assert (tmp_path / "app" / "app.yaml.bak").exists()
    missing = cli("config", "-a", "no-such-preset", "-c", app)
    assert missing.returncode == 1 and "presets: acrobot-ppo" in missing.stderr


def test_a_bad_app_file_is_refused_with_the_key_and_line(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    text = app.read_text().replace("clients: 16", "clients: many")
    app.write_text(text)
    for command in (["run", "--detach"], ["status"], ["checkpoints", "list"]):
        result = cli(*command, "-c", app)
        assert result.returncode == 1, (command, result.stdout)
        assert "environment.clients: expected int, got str 'many'" in result.stderr
        assert "line" in result.stderr
    assert not (tmp_path / "app" / "logs" / "run" / "app" / "supervisor.sock").exists()
    nothing = cli("status", "-c", tmp_path / "none.yaml")
    assert nothing.returncode == 1 and "no app config" in nothing.stderr


def test_a_port_in_use_is_reported_before_anything_starts(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    admin = load_config(app).broker.admin
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", admin.port))
        taken.listen()
        result = cli("run", "--detach", "-c", app)
    assert result.returncode == 1
    assert f"broker.admin ({admin})" in result.stderr and "in use" in result.stderr
    stopped = cli("stop", "-c", app)
    assert stopped.returncode == 1 and "nothing runs" in stopped.stderr


def _write_events(logdir: Path, values: list[float]) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for step, value in enumerate(values):
        summary = Summary(value=[Summary.Value(tag="client/episode_reward", simple_value=value)])
        writer.add_event(Event(step=step, wall_time=1.0e9 + step, summary=summary))
    writer.close()


def test_plot_compares_runs_as_png_and_csv(tmp_path) -> None:
    _write_events(tmp_path / "runs" / "a", [1.0, 2.0, 3.0, 4.0])
    _write_events(tmp_path / "runs" / "b", [10.0, 20.0])
    result = cli("plot", tmp_path / "runs", "-o", tmp_path / "cmp", "--smooth", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(tmp_path / "cmp.csv")))
    assert [(r["run"], float(r["value"]), float(r["smoothed"])) for r in rows] == [
        ("a", 1.0, 1.0),
        ("a", 2.0, 1.5),
        ("a", 3.0, 2.5),
        ("a", 4.0, 3.5),
        ("b", 10.0, 10.0),
        ("b", 20.0, 15.0),
    ]
    empty = cli("plot", tmp_path, "-o", tmp_path / "x", "--tag", "nothing/here")
    assert empty.returncode == 1 and "none of the runs" in empty.stderr


def _saved_model(app: Path, algorithm: str, shards: int, step: int):  # noqa: ANN202
    """Build the app's model with fresh weights and save it as the shards' checkpoints."""
    from relaax_zmq.algorithms.common.flat import flat_parameters
    from relaax_zmq.api.networks import algorithm_parts
    from relaax_zmq.checkpoint import Checkpoint, CheckpointManager

    config = load_config(app)
    declared, hyper = algorithm_parts(config)
    assert declared.model is not None
    model = declared.model(hyper)
    vector = flat_parameters(model)
    ps = config.parameter_servers
    extras = {}
    if hyper.input.normalize:  # shard 0 holds the observation statistics [count, sum, sumsq]
        n = int(np.prod(hyper.input.shape))
        mean, var = np.linspace(-1.0, 1.0, n), np.linspace(0.5, 2.0, n)
        extras = {"statistics": np.concatenate([[100.0], 100 * mean, 100 * (var + mean**2)])}
    bounds = np.linspace(0, vector.size, shards + 1).astype(int)
    for shard in range(shards):
        lo, hi = bounds[shard], bounds[shard + 1]
        CheckpointManager(ps.checkpoint, shard=shard, shards=shards).save(
            Checkpoint(
                global_step=step,
                shard=shard,
                shards=shards,
                offset=int(lo),
                params=vector[lo:hi].copy(),
                param_count=vector.size,
                algorithm=algorithm,
                extras=extras if shard == 0 else {},
                score=42.0,
            )
        )
    normalizer = None
    if extras:
        from relaax_zmq.algorithms.common.normalizer import RunningMeanStd

        normalizer = RunningMeanStd(tuple(hyper.input.shape))
        normalizer.apply_global(extras["statistics"])
    return model, normalizer, hyper.input.clip


@pytest.mark.parametrize(
    ("preset", "algorithm"),
    [
        ("cartpole-da3c", "da3c"),
        pytest.param("pendulum-ppo", "ppo", marks=pytest.mark.slow),  # normalised, continuous
        pytest.param("cartpole-dqn", "dqn", marks=pytest.mark.slow),
    ],
)
def test_export_reproduces_the_agents_greedy_actions(tmp_path, preset, algorithm) -> None:
    import torch

    app = tmp_path / "app.yaml"
    app.write_text((Path(__file__).parents[1] / "conf" / f"{preset}.yaml").read_text())
    edit_app(app, parameter_servers={"shards": 2, "checkpoint": {"dir": str(tmp_path / "ck")}})
    model, normalizer, clip = _saved_model(app, algorithm, shards=2, step=1234)
    listed = json.loads(cli("checkpoints", "list", "--json", "-c", app).stdout)["checkpoints"]
    assert [(r["step"], r["shards"], r["complete"]) for r in listed] == [(1234, [0, 1], True)]
    shown = json.loads(cli("checkpoints", "show", "--json", "-c", app).stdout)
    assert [s["score"] for s in shown["shards"]] == [42.0, 42.0]
    spec = load_config(app).algorithm.config["input"]["shape"]
    observations = torch.as_tensor(
        np.random.default_rng(0).normal(size=(64, *spec)), dtype=torch.float32
    )
    inputs = observations  # as the agent sees them: normalised with shard 0's statistics
    if normalizer is not None:
        inputs = torch.as_tensor(normalizer.normalize(observations.numpy(), clip=clip))
    with torch.no_grad():
        if algorithm == "dqn":
            expected = model(inputs).argmax(dim=-1)
        else:  # the agent's exploit action: the distribution's mode, clipped to the bounds
            head = model(inputs).head
            expected = model.distribution(head).mode()
            if not model.action.is_discrete:
                low, high = torch.tensor(model.action.low), torch.tensor(model.action.high)
                expected = torch.maximum(torch.minimum(expected, high), low)
    scripted = cli("export", "--format", "torchscript", "-o", tmp_path / "p.pt", "-c", app)
    assert scripted.returncode == 0, scripted.stderr
    loaded = torch.jit.load(str(tmp_path / "p.pt"))
    assert torch.allclose(loaded(observations).float(), expected.float(), atol=1e-5)
    onnx = cli("export", "--format", "onnx", "-o", tmp_path / "p.onnx", "-c", app)
    assert onnx.returncode == 0, onnx.stderr
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "p.onnx"))
    (actions,) = session.run(None, {"observations": observations.numpy()})
    assert np.allclose(actions.astype(np.float64), expected.numpy().astype(np.float64), atol=1e-5)
    exported = cli("checkpoints", "export", "-o", tmp_path / "w.npz", "-c", app)
    assert exported.returncode == 0, exported.stderr
    from relaax_zmq.algorithms.common.flat import flat_parameters

    assert np.array_equal(np.load(tmp_path / "w.npz")["params"], flat_parameters(model))


def test_export_without_checkpoints_says_where_it_looked(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    result = cli("export", "-c", app)
    assert result.returncode == 1
    assert "no complete checkpoint of 1 shard(s) in" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_help_texts_are_plain_text(capsys) -> None:
    from importlib.metadata import version

    from relaax_zmq.cli.main import main

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0, command
        assert "``" not in out and "usage:" in out, command
    script = Path(sys.executable).parent / "relaax-zmq"  # the console script, as users type it
    shown = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout == f"relaax-zmq {version('relaax-zmq')}\n"
    helped = subprocess.run([script, "compare", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--threshold" in helped.stdout
    assert "``" not in helped.stdout and "relaax-zmq compare RUN ..." in helped.stdout
