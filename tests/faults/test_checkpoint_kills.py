"""Crash consistency: SIGKILL at random moments of checkpoint saves never costs a checkpoint.

A real process saves checkpoints of one shard back to back (``CheckpointManager`` on a real
folder, fsyncs included) and is SIGKILLed again and again: every other time after a random
delay within two measured save durations (anywhere in a save: encoding, writing, pruning),
and in between at a random moment within a measured write duration after its temporary file
appeared (while the bytes go to disk). After every kill: every file under a checkpoint name loads and
verifies (zero corrupt loads), a restart (a new manager's ``restore``) removes the temporary
file a kill left (none remains) and restores the newest checkpoint on disk, whose contents
are the ones saved at its step. The saver is forked from a process that has imported
everything once, so a kill costs milliseconds, not an interpreter start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from relaax_zmq.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    LocalLocation,
    decode,
    encode,
)
from relaax_zmq.checkpoint.naming import checkpoint_name, parse_name, parse_temp_name, temp_name
from relaax_zmq.config import CheckpointConfig

SIZE = 500_000  # floats in the slice: 2 MB of params + 2 MB of optimizer state a file
KEEP = 2

#: Reads "go STEP" lines; forks a child saving steps STEP+1, STEP+2, ... until it is killed;
#: prints "pid PID" once forked and "reaped PID STATUS" once the child is gone.
SAVER = """
import os, sys
import numpy as np
from relaax_zmq.checkpoint import Checkpoint, CheckpointManager
from relaax_zmq.config import CheckpointConfig

directory, size, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = CheckpointConfig(dir=directory, keep=keep, every_seconds=None)
base = np.random.default_rng(0).standard_normal(size).astype(np.float32)


def save_forever(step):
    manager = CheckpointManager(config, shard=0, shards=1)
    params = base.copy()
    while True:
        step += 1
        params[0] = step
        manager.save(Checkpoint(
            global_step=step, shard=0, shards=1, offset=0, params=params, param_count=size,
            algorithm="crash", optimizer={"m": params[::-1]}, counters={"episodes": step},
        ))


for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            save_forever(int(line.split()[1]))
        finally:
            os._exit(1)
    print("pid", pid, flush=True)
    print("reaped", pid, os.waitpid(pid, 0)[1], flush=True)
"""

BASE = np.random.default_rng(0).standard_normal(SIZE).astype(np.float32)


def checkpoint(step: int) -> Checkpoint:
    params = BASE.copy()
    params[0] = step
    return Checkpoint(
        global_step=step,
        shard=0,
        shards=1,
        offset=0,
        params=params,
        param_count=SIZE,
        algorithm="crash",
        optimizer={"m": params[::-1]},
        counters={"episodes": step},
    )


def temp_files(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if parse_temp_name(path.name) is not None]


def config(directory: Path) -> CheckpointConfig:
    return CheckpointConfig(dir=directory, keep=KEEP, every_seconds=None)


def durations(directory: Path) -> tuple[float, float]:
    """The median seconds of one save and of its write to disk, measured on this file system."""
    manager = CheckpointManager(config(directory), shard=0, shards=1)
    saves, writes = [], []
    for step in range(1, 6):
        start = time.perf_counter()
        manager.save(checkpoint(step))
        saves.append(time.perf_counter() - start)
        data = encode(checkpoint(step))
        start = time.perf_counter()
        LocalLocation(directory).write(checkpoint_name(step, 0, 1), data)
        writes.append(time.perf_counter() - start)
    return float(np.median(saves)), float(np.median(writes))


def wait_for_temp_file(directory: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not temp_files(directory):
        assert time.monotonic() < deadline, "the saver wrote no file"
        time.sleep(0.0002)  # leave the saver the CPU


@contextmanager
def saver(directory: Path) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-c", SAVER, str(directory), str(SIZE), str(KEEP)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()  # its child, if any, is killed by the test before this
        process.wait()


def run_kills(directory: Path, kills: int, seed: int) -> dict[str, float]:
    """``kills`` rounds of save, SIGKILL, verify, restart; the figures."""
    duration, writing = durations(directory.parent / "calibration")
    rng = random.Random(seed)
    figures = {"kills": kills, "save_ms": round(duration * 1000, 1)}
    figures.update(write_ms=round(writing * 1000, 1), mid_write=0)
    figures.update(corrupt_loads=0, strays_after_restart=0, new_checkpoints=0)
    directory.mkdir()
    newest = 0
    started = time.monotonic()
    with saver(directory) as process:
        assert process.stdin is not None and process.stdout is not None
        for kill in range(kills):
            process.stdin.write(f"go {newest}\n")
            process.stdin.flush()
            pid = int(process.stdout.readline().split()[1])
            if kill % 2:  # while the bytes go to disk
                wait_for_temp_file(directory)
                time.sleep(rng.uniform(0, writing))
            else:  # anywhere in a save
                time.sleep(rng.uniform(0, 2 * duration))
            os.kill(pid, signal.SIGKILL)
            reaped = process.stdout.readline().split()
            assert reaped[:2] == ["reaped", str(pid)], reaped
            status = int(reaped[2])
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status

            strays = temp_files(directory)
            figures["mid_write"] += bool(strays)
            assert all(f".{pid}-" in path.name for path in strays), strays
            steps = []
            for path in directory.glob("ckpt-*.h5"):
                parsed = parse_name(path.name)
                assert parsed is not None
                try:
                    decode(path.read_bytes(), str(path))
                except CheckpointError:
                    figures["corrupt_loads"] += 1
                    raise
                steps.append(parsed.global_step)

            restored = CheckpointManager(config(directory), shard=0, shards=1).restore()
            figures["strays_after_restart"] += len(temp_files(directory))
            assert temp_files(directory) == []
            if restored is None:  # killed before the very first save was whole
                assert steps == [] and newest == 0
                continue
            assert restored.global_step == max(steps) >= newest  # the newest, never older
            figures["new_checkpoints"] += restored.global_step > newest
            newest = restored.global_step
            expected = checkpoint(newest)
            np.testing.assert_array_equal(restored.params, expected.params)
            np.testing.assert_array_equal(restored.optimizer["m"], expected.optimizer["m"])
            assert restored.counters == {"episodes": newest}
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def check(figures: dict[str, float]) -> None:
    print("checkpoint kills:", json.dumps(figures))
    assert figures["corrupt_loads"] == 0 and figures["strays_after_restart"] == 0
    # the kills really land while files are written, and saves still get through between them
    assert figures["mid_write"] >= figures["kills"] * 0.2, figures
    assert figures["new_checkpoints"] >= figures["kills"] * 0.05, figures


def test_sigkill_at_100_random_moments_of_saves(tmp_path: Path) -> None:
    check(run_kills(tmp_path / "ckpt", kills=100, seed=1))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_at_1000_random_moments_of_saves(tmp_path: Path) -> None:
    check(run_kills(tmp_path / "ckpt", kills=1000, seed=2))


def test_a_restart_removes_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    manager = CheckpointManager(config(tmp_path), shard=0, shards=1)
    manager.save(checkpoint(1))
    name = checkpoint_name(2, 0, 1)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    files = {
        "dead writer": tmp_path / temp_name(name, f"{int(gone.stdout)}-0001"),
        "live writer": tmp_path / temp_name(name, f"{os.getppid()}-0002"),  # may be busy
        "this process": tmp_path / temp_name(name, f"{os.getpid()}-0003"),  # not writing it
        "other shard": tmp_path / temp_name(checkpoint_name(2, 1, 2), "1-0004"),
    }
    for path in files.values():
        path.write_bytes(b"partial")
    restored = CheckpointManager(config(tmp_path), shard=0, shards=1).restore()
    assert restored is not None and restored.global_step == 1
    assert {what for what, path in files.items() if path.exists()} == {
        "live writer",
        "other shard",
    }
    manager.save(checkpoint(2))  # the shard's own writer removes every one of its own
    assert not files["live writer"].exists() and files["other shard"].exists()
