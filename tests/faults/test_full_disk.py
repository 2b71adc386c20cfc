"""A full disk: a checkpoint that does not fit fails cleanly, is reported, and is retried.

The checkpoint folder lives on a real 2 MiB tmpfs mounted for the test (skipped where
mounting is not permitted) and filled up by a filler file. A save that does not fit must
leave the previous checkpoint intact and loadable and no temporary file, and be reported
(the path and "No space left on device" in the log, ``failed_saves``); saves back off
(``SaveTrigger.mark_failed``) instead of retrying in a loop, and succeed again once space is
freed. Checked on ``CheckpointManager`` itself and through a real shard daemon that trains on.
"""

from __future__ import annotations

import errno
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_ps_processes import start_shard, write_ps_app
from test_ps_shards import clients

from relaax_zmq.checkpoint import Checkpoint, CheckpointError, CheckpointManager, decode
from relaax_zmq.checkpoint.naming import checkpoint_name, parse_name, parse_temp_name
from relaax_zmq.config import CheckpointConfig
from relaax_zmq.ps import load_spec

pytestmark = pytest.mark.timeout(120)

NO_SPACE = "No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted in ``tmp_path`` (unmounted afterwards)."""
    disk = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of ``disk``."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if parse_temp_name(path.name) is not None]


def on_disk(folder: Path) -> dict[int, Checkpoint]:
    """Every checkpoint in ``folder`` by step, each loaded and verified."""
    return {
        parse_name(path.name).global_step: decode(path.read_bytes(), str(path))  # type: ignore[union-attr]
        for path in folder.glob("ckpt-*.h5")
    }


def checkpoint(step: int) -> Checkpoint:
    params = np.full(100_000, step, np.float32)  # 400 KB: the 2 MiB disk holds a few
    return Checkpoint(
        global_step=step,
        shard=0,
        shards=1,
        offset=0,
        params=params,
        param_count=params.size,
        algorithm="disk",
        optimizer={"m": params * 2},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_save_that_does_not_fit_keeps_the_previous_one_and_backs_off(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = small_disk / "ckpt"
    clock = Clock()
    config = CheckpointConfig(dir=folder, keep=2, every_steps=1, every_seconds=None)
    manager = CheckpointManager(config, shard=0, shards=1, clock=clock)
    manager.save(checkpoint(1))
    filler = fill(small_disk)

    delays = []
    for step in (2, 3, 4):
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(CheckpointError, match=NO_SPACE):
            manager.save(checkpoint(step))
        assert f"{folder / checkpoint_name(step, 0, 1)}: OSError: [Errno 28] {NO_SPACE}" in (
            caplog.text
        )
        assert list(on_disk(folder)) == [1] and temp_files(folder) == []  # intact, nothing left
        assert manager.last_failures == [(str(folder), f"OSError: [Errno 28] {NO_SPACE}")]
        start = clock.now
        while not manager.due(step):  # not retried in a loop: 1 s, then 2 s, then 4 s
            clock.now += 0.25
        delays.append(clock.now - start)
    assert delays == [1.0, 2.0, 4.0] and manager.failed_saves == 3

    filler.unlink()
    manager.save(checkpoint(5))
    assert sorted(on_disk(folder)) == [1, 5] and temp_files(folder) == []
    restored = CheckpointManager(config, shard=0, shards=1).restore()
    assert restored is not None and restored.global_step == 5
    assert not manager.due(5) and manager.due(6)  # the back-off is over


def test_a_shard_daemon_on_a_full_disk_reports_trains_on_and_saves_again(
    small_disk: Path, tmp_path: Path
) -> None:
    folder = small_disk / "ckpt"
    checkpoints = {"dir": str(folder), "every_seconds": 0.3, "keep": 2}
    path, config = write_ps_app(tmp_path, 1, checkpoint=checkpoints)
    spec = load_spec(config)
    assert spec is not None
    daemon = start_shard(path, 0)
    try:
        with clients(config, "w0", count=spec.param_count) as (client,):
            assert client.wait_consistent(30), daemon.output()
            version = 0

            def train(until, what: str, timeout: float = 20.0) -> None:
                """Push gradients (one per version) until ``until()``."""
                nonlocal version
                deadline = time.monotonic() + timeout
                while not until():
                    assert time.monotonic() < deadline, f"{what}:\n{daemon.output()[-3000:]}"
                    grad = np.ones(spec.param_count, np.float32)
                    assert client.push(grad, [version], steps=5, episodes=1) == 1
                    assert client.wait_consistent(5, newer_than=version), daemon.output()
                    version += 1
                    time.sleep(0.05)

            train(lambda: len(on_disk(folder)) >= 1, "a first checkpoint")
            filler = fill(small_disk)
            before = on_disk(folder)
            newest = max(before)

            failures = lambda: daemon.output().count(f"{NO_SPACE}); next try in")  # noqa: E731
            train(lambda: failures() >= 1, "a failed save")
            assert daemon.proc.poll() is None  # it keeps serving
            log = daemon.output()
            assert f"checkpoint not saved to {folder}/ckpt-" in log, log[-3000:]
            trained = version
            train(lambda: version >= trained + 20, "training on")  # trains on, ~2 s
            after = on_disk(folder)  # the previous checkpoints are whole and unchanged
            assert after.keys() == before.keys() and temp_files(folder) == []
            for step, kept in after.items():
                np.testing.assert_array_equal(kept.params, before[step].params)
            assert failures() <= 10, "a full disk must not make the shard retry in a loop"
            print(f"full disk: {failures()} failed saves while the disk was full")

            filler.unlink()  # space again: the next try saves
            train(lambda: max(on_disk(folder), default=0) > newest, "a save after the disk")
            assert temp_files(folder) == []
        assert daemon.stop() == 0  # and the final checkpoint on SIGTERM
        assert max(on_disk(folder)) >= version * 5, daemon.output()[-3000:]
        # the stop summary counts the failed saves
        assert f"checkpoint_failures {failures()} " in daemon.output(), daemon.output()[-3000:]
    finally:
        daemon.stop()
