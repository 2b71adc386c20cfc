"""Coverage-guided fuzzing (atheris): a bounded run of every target, a planted bug, long runs.

Every run is a child process, ``python -m tests.fuzz TARGET`` from the repository root
(atheris sets up once per process and ends it), whose last output line is a JSON object
of figures. The targets and their properties: tests/fuzz/ (imported here as ``fuzz``:
tests/ is on the path) and docs/security.md ("Fuzzing"). What they found is pinned in
tests/test_fuzz_regressions.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fuzz import TARGETS
from fuzz.frames import join_frames, split_frames

from relaax_zmq.protocol.vectors import load_vectors

ROOT = Path(__file__).resolve().parents[1]

SHORT_SECONDS = 2
LONG_SECONDS = 60


def fuzz(
    *args: str, timeout: float = 180
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the fuzzing CLI; its result and the JSON object of its last line."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", *args, "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc, json.loads(lines[-1])


def test_the_codec_seed_corpus_is_the_protocol_vectors_frame_for_frame() -> None:
    vectors = load_vectors()
    assert len(vectors) > 50
    for vector in vectors:
        assert split_frames(join_frames(vector.frames)) == vector.frames, vector.name


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_bounded_run_of_each_target_executes_and_finds_nothing(
    target: str, tmp_path: Path
) -> None:
    proc, report = fuzz(target, "--seconds", str(SHORT_SECONDS), "--artifacts", str(tmp_path))
    assert proc.returncode == 0, report["finding"] or proc.stderr[-2000:]
    assert report["ok"] and report["exit_code"] == 0
    assert report["executions"] > 50
    assert report["coverage"] > 20 and report["features"] >= report["coverage"]
    assert report["instrumented"] >= 5, "the product modules it drives are instrumented"
    assert not any(tmp_path.iterdir()), "no crash file"


def test_a_planted_bug_fails_the_run_with_a_crash_file_that_reproduces(tmp_path: Path) -> None:
    update = next(v for v in load_vectors() if v.name.startswith("update"))
    planted = update.frames[0][:6]  # a seed starts with its header frame: RLXP, v1, update
    proc, report = fuzz(
        "codec", "--seconds", "30", "--plant", planted.hex(), "--artifacts", str(tmp_path)
    )
    assert proc.returncode == 1 and not report["ok"] and report["exit_code"] != 0
    assert "PlantedBug" in report["finding"]
    (crash,) = report["artifacts"]
    assert Path(crash).parent == tmp_path and Path(crash).read_bytes().startswith(planted)

    again, replay = fuzz(
        "codec", "--reproduce", crash, "--plant", planted.hex(), "--artifacts", str(tmp_path / "2")
    )
    assert again.returncode == 1 and "PlantedBug" in replay["finding"]
    clean, fixed = fuzz("codec", "--reproduce", crash, "--artifacts", str(tmp_path / "3"))
    assert clean.returncode == 0 and fixed["ok"], "the input itself breaks nothing real"


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_long_run_of_each_target_finds_nothing(target: str, tmp_path: Path) -> None:
    proc, report = fuzz(
        target, "--seconds", str(LONG_SECONDS), "--artifacts", str(tmp_path), timeout=600
    )
    assert proc.returncode == 0, report["finding"] or proc.stderr[-2000:]
    assert report["ok"] and report["executions"] > 1000
