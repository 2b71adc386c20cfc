"""``relaax-zmq train`` and ``relaax-zmq eval`` as users type them (the console script).

The README test covers the one-liner through the daemons; these take the serial path
(a few seconds), --set, --json, every kind of policy eval reads, --video, and errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

CLI = str(Path(sys.executable).parent / "relaax-zmq")


def relaax(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=200
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A short serial run of ppo on CartPole-v1 with one --set, its JSON summary."""
    folder = tmp_path_factory.mktemp("train")
    done = relaax(
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--serial",
        "--total-steps",
        "4000",
        "--seed",
        "3",
        "--set",
        "rollout_length=32",
        "--run-dir",
        "run",
        "--json",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return folder / "run", json.loads(done.stdout.strip().splitlines()[-1])


def test_train_writes_the_app_it_used_and_the_policy(trained):
    run, summary = trained
    assert summary["steps"] >= 4000 and summary["stopped"] == "4,000 steps done"
    assert summary["policy"] == str(run / "policy.h5") and (run / "policy.h5").is_file()
    app = (run / "app.yaml").read_text()
    assert "rollout_length: 32" in app and "seed: 3" in app  # --set and --seed are in the file


@pytest.mark.parametrize("source", ["run", "run/policy.h5", "run/app.yaml"])
def test_eval_reads_a_run_folder_a_policy_file_and_an_app(trained, source):
    run, _ = trained
    done = relaax("eval", source, "--episodes", "3", "--json", cwd=run.parent)
    if source == "run/app.yaml":  # a serial run has no checkpoints: the app's shards never ran
        assert done.returncode == 1 and "no complete checkpoint" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["episodes"] == 3 and len(figures["returns"]) == 3
    assert figures["mean_reward"] == pytest.approx(sum(figures["returns"]) / 3)


def test_eval_writes_a_video_of_the_episodes(trained):
    cv2 = pytest.importorskip("cv2")
    run, _ = trained
    done = relaax("eval", "run", "-n", "1", "--video", "play.mp4", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    video = cv2.VideoCapture(str(run.parent / "play.mp4"))
    length = int(done.stdout.split("returns: ")[1].split()[0].split(".")[0])
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == length  # a frame per step
    assert video.get(cv2.CAP_PROP_FPS) == 50  # CartPole's render_fps


def test_eval_of_an_exported_file_needs_the_environment(trained, tmp_path):
    import relaax_zmq
    from relaax_zmq.cli.export import example_input, write_torchscript

    run, _ = trained
    policy = relaax_zmq.Policy.load(run)
    write_torchscript(policy.module, example_input((4,), "float32"), tmp_path / "p.pt")
    refused = relaax("eval", str(tmp_path / "p.pt"), cwd=tmp_path)
    assert refused.returncode == 2 and "give --env ID" in refused.stderr
    done = relaax(
        "eval", str(tmp_path / "p.pt"), "--env", "CartPole-v1", "-n", "2", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    mine = relaax("eval", str(run), "--env", "CartPole-v1", "-n", "2", "--json", cwd=tmp_path)
    assert json.loads(done.stdout)["returns"] == json.loads(mine.stdout)["returns"]


def test_train_refuses_a_bad_key_by_its_full_name(tmp_path):
    done = relaax(
        "train", "--env", "CartPole-v1", "--serial", "--set", "rollout_lenght=3", cwd=tmp_path
    )
    assert done.returncode == 1
    assert (
        "algorithm.config.rollout_lenght: unknown key (did you mean 'rollout_length'?)"
        in done.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_play_of_a_trained_gym_app_is_eval_of_its_newest_checkpoint(tmp_path):
    import relaax_zmq

    run = relaax_zmq.learn(
        "CartPole-v1", "da3c", total_steps=2000, mode="local", run_dir=tmp_path / "r"
    )
    app = str(run.app_file)
    played = relaax("play", "-c", app, "-n", "2", "--episodes", "2", "--json", cwd=tmp_path)
    assert played.returncode == 0, played.stderr
    evaluated = relaax("eval", app, "-n", "4", "--json", cwd=tmp_path)
    assert json.loads(played.stdout)["rewards"] == json.loads(evaluated.stdout)["returns"]
    assert not (tmp_path / "r" / "logs" / "run").exists()  # no supervisord was started for it
