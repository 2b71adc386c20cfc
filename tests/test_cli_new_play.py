"""new, play, config and generate as a new user drives them, --set, and the optional extras."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_cli_support import cli, new_bandit_app

from relaax_zmq.cli.common import CliError, load_app, parse_set
from relaax_zmq.cli.presets import apply_preset, list_presets
from relaax_zmq.cli.run import effective_app, parse_options
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.config import load_config

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]


def test_play_with_no_servers_running_starts_them_and_prints_the_mean(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app", environment={"env_kwargs": {"episode_length": 20}})
    played = cli("play", "-c", app, "-n", "2", "--episodes", "2", "--ready-timeout", "60")
    assert played.returncode == 0, played.stderr
    assert re.search(r"^4 exploit episodes: mean reward -?\d", played.stdout, re.M), played.stdout
    assert "Traceback" not in played.stderr
    status = cli("status", "-c", app, "--json")  # the servers it started are stopped again
    assert status.returncode in (0, 1) and '"RUNNING"' not in status.stdout


def test_play_takes_runs_own_defaults() -> None:
    options = parse_options(["servers", "--detach", "-c", "x.yaml"])
    assert options.crash_limit >= 0 and options.crash_window > 0 and options.set == []
    assert options.time_limit is None  # a plain run has no time limit


def test_new_with_a_discrete_observation_space_loads(tmp_path) -> None:
    made = cli("new", tmp_path / "lake", "-e", "FrozenLake-v1")
    assert made.returncode == 0, made.stderr
    config = load_config(tmp_path / "lake" / "app.yaml")
    assert config.algorithm.config["input"] == {"shape": [16]}
    assert config.algorithm.config["output"] == {"actions": 4}


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py not installed")
def test_new_with_an_atari_id_registers_ale(tmp_path) -> None:
    made = cli("new", tmp_path / "pong", "-e", "ALE/Pong-v5", "-a", "dqn")
    assert made.returncode == 0, made.stderr
    config = load_config(tmp_path / "pong" / "app.yaml")
    assert config.environment.name == "ALE/Pong-v5" and config.algorithm.name == "dqn"
    fitted = cli("new", tmp_path / "breakout", "-e", "ALE/Breakout-v5", "-a", "ppo")
    assert fitted.returncode == 0, fitted.stderr
    config = load_config(tmp_path / "breakout" / "app.yaml")
    assert config.algorithm.config["input"] == {"shape": [210, 160, 3], "dtype": "uint8"}


def test_new_names_the_config_reference_where_it_is(tmp_path) -> None:
    made = cli("new", tmp_path / "app")
    assert made.returncode == 0, made.stderr
    (page,) = re.findall(r"every key: (\S+config\.md)", made.stdout)
    assert Path(page).is_file()
    assert page in (tmp_path / "app" / "app.yaml").read_text()


def test_every_listed_preset_applies_with_its_whole_description(tmp_path) -> None:
    listed = cli("config", "-l", "--json")
    assert listed.returncode == 0, listed.stderr
    presets = {p["name"]: p for p in json.loads(listed.stdout)["presets"]}
    assert "cartpole-c" not in presets and "exchange" not in presets  # repository examples
    ppo = presets["cartpole-ppo"]["description"]
    assert ppo.startswith("CartPole-v1 by PPO") and ppo.endswith("(it solves within about 100-130k).")
    assert presets == {p["name"]: p for p in list_presets()}
    app = new_bandit_app(tmp_path / "app")
    original = app.read_text()
    for name in presets:
        app.write_text(original)
        backup = apply_preset(app, name)  # raises CliError for a preset that does not fit
        assert backup is not None and backup.read_text() == original, name
    text = cli("config", "-l")
    assert text.returncode == 0 and "(it solves within about 100-130k)." in text.stdout


def test_config_apply_keeps_comments_order_and_a_backup(tmp_path) -> None:
    app = tmp_path / "app.yaml"
    shutil.copy(ROOT / "conf" / "app.yaml", app)
    original = app.read_text()
    applied = cli("config", "-a", "cartpole-ppo", "-c", app)
    assert applied.returncode == 0, applied.stderr
    text = app.read_text()
    assert (tmp_path / "app.yaml.bak").read_text() == original
    # the file's opening comment and the commented-out sections the preset leaves alone survive
    assert "# relaax-zmq default app: a multi-armed bandit" in text
    for line in ("# log_level: INFO", "# broker:", "#   heartbeat_interval: 1.0", "# security:"):
        assert line in text, line
    assert [k for k in yaml.safe_load(text)][:3] == ["version", "environment", "algorithm"]
    assert load_config(app).algorithm.name == "ppo"
    again = cli("config", "-a", "cartpole-dqn", "-c", app)
    assert again.returncode == 0, again.stderr
    assert app.read_text().count("# relaax-zmq: preset") == 1  # the note is replaced


def test_generate_keeps_comments_and_a_backup(tmp_path) -> None:
    app = tmp_path / "app.yaml"
    shutil.copy(ROOT / "conf" / "app.yaml", app)
    original = app.read_text()
    result = cli("generate", "-a", "reinforce", "-c", app)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "app.yaml.bak").read_text() == original
    text = app.read_text()
    assert "path: algorithms/reinforce" in text
    assert "# the bandit's constant observation" in text  # comments inside the edited section
    assert "# broker:" in text and "# relaax-zmq default app" in text
    kept = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert sum(line in text for line in kept) == len(kept)
    assert load_config(app).algorithm.path == tmp_path / "algorithms" / "reinforce"
    env = cli("generate", "-e", "template", "-c", app)
    assert env.returncode == 0, env.stderr
    assert "# broker:" in app.read_text() and "path: algorithms/reinforce" in app.read_text()


def test_parse_set_reads_yaml_values_and_refuses_bad_pairs() -> None:
    assert parse_set(["a.b=1e-4", "c=true", "d=[1, 2]", "e={x: 1}", "f=on the left", "g="]) == {
        "a.b": 1e-4,
        "c": True,
        "d": [1, 2],
        "e": {"x": 1},
        "f": "on the left",
        "g": None,
    }
    for bad in ("abc", "a..b=1", "=3"):
        with pytest.raises(CliError, match="expected KEY=VALUE") as info:
            parse_set([bad])
        assert info.value.code == 2
    with pytest.raises(CliError, match=r"--set a: expected a YAML value, got '\[1'"):
        parse_set(["a=[1"])


def test_set_errors_name_the_full_key(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    unknown = cli("run", "-c", app, "--set", "algorithm.config.lr=0.1")
    assert unknown.returncode == 1
    assert "algorithm.config.lr: unknown key" in unknown.stderr
    assert "known keys: " in unknown.stderr and "batch_size" in unknown.stderr
    bad = cli("run", "-c", app, "--set", "workers.count=many")
    assert bad.returncode == 1 and "workers.count: expected int, got str 'many'" in bad.stderr
    section = cli("run", "-c", app, "--set", "workers.countx=2")
    assert section.returncode == 1 and "workers.countx: unknown key" in section.stderr
    assert "max_batch" in section.stderr
    usage = cli("run", "-c", app, "--set", "workers")
    assert usage.returncode == 2 and "expected KEY=VALUE" in usage.stderr


def test_run_set_gives_the_daemons_the_changed_app(tmp_path) -> None:
    app = new_bandit_app(tmp_path / "app")
    overrides = parse_set(["workers.count=2", "algorithm.config.gamma=0.5"])
    config = load_app(app, overrides)
    path = effective_app(config, RunFolder.of(app))
    assert path.parent == RunFolder.of(app).root
    loaded = load_config(path)
    assert loaded.workers.count == 2 and loaded.algorithm.config["gamma"] == 0.5
    assert dataclasses.replace(loaded, app_dir=config.app_dir, source=config.source) == config
    assert load_config(app).workers.count == 1  # the app file is left as it is


def test_new_set_writes_the_changes_into_the_app(tmp_path) -> None:
    made = cli("new", tmp_path / "app", "--set", "workers.count=2", "--set", "environment.clients=3")
    assert made.returncode == 0, made.stderr
    config = load_config(tmp_path / "app" / "app.yaml")
    assert config.workers.count == 2 and config.environment.clients == 3
    wrong = cli("new", tmp_path / "other", "--set", "algorithm.config.lr=1")
    assert wrong.returncode == 1 and "algorithm.config.lr: unknown key" in wrong.stderr
    assert not (tmp_path / "other").exists()


MISSING = """
import sys
sys.modules[{module!r}] = None  # as if the extra were not installed
from relaax_zmq.runtime.extras import MissingExtra
try:
    {call}
except MissingExtra as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("module", "call", "extra"),
    [
        (
            "boto3",
            "from relaax_zmq.checkpoint.s3 import make_s3_client\n"
            "    from relaax_zmq.config import S3Config\n"
            "    make_s3_client(S3Config(bucket='b'))",
            "s3",
        ),
        (
            "matplotlib",
            "from relaax_zmq.runtime.extras import require_extra\n"
            "    require_extra('matplotlib', 'plots', 'learning-curve pictures')",
            "plots",
        ),
    ],
)
def test_a_missing_extra_is_named(module: str, call: str, extra: str) -> None:
    code = MISSING.format(module=module, call=call)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"needs the {module} package" in result.stdout
    assert f"pip install 'relaax-zmq[{extra}]'" in result.stdout


def test_an_app_file_rewritten_unchanged_keeps_every_byte(tmp_path) -> None:
    from relaax_zmq.cli.appfile import NOTE, read_app, write_app
    from relaax_zmq.presets import preset_files

    for preset in preset_files():
        app = tmp_path / preset.name
        original = preset.read_text()
        app.write_text(original)
        assert write_app(app, read_app(app), "nothing changed") == tmp_path / f"{preset.name}.bak"
        assert app.read_text() == f"{NOTE}nothing changed\n" + original, preset.name
