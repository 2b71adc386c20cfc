"""The README's Python example and command-line example, run exactly as printed there.

Each block is read from README.md (after its ``<!-- readme-...-example -->`` marker) and
run as a user would: the Python one as a script, the shell one line by line in bash,
both in a fresh folder with this environment's ``relaax-zmq`` on the PATH. They train
CartPole-v1 to 475 (serial PPO about 10-15 s, the daemons about 20-30 s here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

README = Path(__file__).resolve().parent.parent / "README.md"


def example(marker: str, language: str) -> str:
    """The fenced ``language`` block right after ``<!-- marker -->`` in the README."""
    text = README.read_text()
    found = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no {language} block after <!-- {marker} -->"
    return found.group(1)


def user_env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_python_example_trains_and_evaluates_a_policy(tmp_path):
    code = example("readme-python-example", "python")
    assert len(code.strip().splitlines()) == 3  # the promise: three lines
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    mean = float(re.search(r"10 episodes: mean reward ([\d.]+)", done.stdout).group(1))
    assert mean >= 400, done.stdout  # the policy that reached 475 in training
    (run,) = (tmp_path / "runs").iterdir()
    assert {"app.yaml", "policy.h5", "metrics"} <= {p.name for p in run.iterdir()}


def test_the_command_line_example_trains_and_evaluates(tmp_path):
    lines = [line for line in example("readme-cli-example", "bash").splitlines() if line.strip()]
    assert [line.split()[:2] for line in lines] == [["relaax-zmq", "train"], ["relaax-zmq", "eval"]]
    outputs = []
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=280,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    assert "target reward 475 reached" in outputs[0] and "(local)" in outputs[0]
    assert re.search(r"20 episodes: mean reward [\d.]+", outputs[1]), outputs[1]
    (run,) = (tmp_path / "runs").iterdir()
    assert list((run / "checkpoints").glob("ckpt-*.h5")) and (run / "logs").is_dir()
