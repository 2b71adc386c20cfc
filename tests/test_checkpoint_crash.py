"""Crash consistency: SIGKILL in the middle of a save never leaves a torn checkpoint behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from relaax_zmq.checkpoint import Checkpoint, CheckpointManager, LocalLocation, decode
from relaax_zmq.checkpoint.naming import parse_temp_name
from relaax_zmq.config import CheckpointConfig

SIZE = 5_000_000  # floats in the slice: 20 MB of params + 20 MB of optimizer state a file

SAVER = """
import sys
import numpy as np
from relaax_zmq.checkpoint import Checkpoint, CheckpointManager
from relaax_zmq.config import CheckpointConfig

config = CheckpointConfig(dir=sys.argv[1], keep=2, every_seconds=None)
manager = CheckpointManager(config, shard=0, shards=1)
params = np.random.default_rng(0).standard_normal(int(sys.argv[2])).astype(np.float32)
step = 0
while True:
    step += 1
    params[0] = step
    manager.save(Checkpoint(
        global_step=step, shard=0, shards=1, offset=0, params=params, param_count=params.size,
        algorithm="crash", optimizer={"m": params[::-1]}, counters={"episodes": step},
    ))
    print(step, flush=True)
"""


def temp_files(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if parse_temp_name(path.name) is not None]


def expected_params(step: int) -> np.ndarray:
    params = np.random.default_rng(0).standard_normal(SIZE).astype(np.float32)
    params[0] = step
    return params


def kill_mid_save(directory: Path, after: int) -> tuple[int, bool]:
    """Run the saver; SIGKILL it once ``after`` saves are done, while the next one is written.

    Returns the number of saves done and whether a temporary file was seen before the kill.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(directory), str(SIZE)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        for step in range(1, after + 1):
            line = child.stdout.readline()  # save number ``step`` is complete
            assert line.strip() == str(step), f"saver failed: {line!r}"
        deadline = time.monotonic() + 10
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = any(path.stat().st_size > 0 for path in temp_files(directory))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        done = after + sum(1 for _ in child.stdout)  # saves reported after those
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return done, seen


def test_sigkill_mid_save_leaves_a_restorable_checkpoint(tmp_path: Path) -> None:
    done, seen = kill_mid_save(tmp_path, after=3)
    assert seen, "never caught a checkpoint being written"
    strays = temp_files(tmp_path)
    location = LocalLocation(tmp_path)
    names = {entry.name for entry in location.list()}
    assert len(names) in (2, 3)  # keep=2, plus the next one if it got its name before the kill
    assert not names & {path.name for path in strays}  # a temporary file is never listed
    for name in names:  # every file under a checkpoint name is whole and verified
        decode(location.read(name), name)

    config = CheckpointConfig(dir=tmp_path, keep=2, every_seconds=None)
    manager = CheckpointManager(config, shard=0, shards=1)
    restored = manager.restore()
    assert restored is not None and done <= restored.global_step <= done + 1
    np.testing.assert_array_equal(restored.params, expected_params(restored.global_step))
    np.testing.assert_array_equal(restored.optimizer["m"], restored.params[::-1])
    assert restored.counters == {"episodes": restored.global_step}

    step = restored.global_step + 1
    manager.save(
        Checkpoint(
            global_step=step,
            shard=0,
            shards=1,
            offset=0,
            params=restored.params,
            param_count=SIZE,
            algorithm="crash",
        )
    )
    assert temp_files(tmp_path) == []  # the next save removed what the crash left
    assert manager.restore().global_step == step  # type: ignore[union-attr]
