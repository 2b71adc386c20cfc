"""Vectorised blocks as child processes, watched from this one like ``VectorBlocks``.

``BlockProcesses`` starts one ``python -m relaax_zmq.envs --block J`` child per block of
``environment.block_sessions()``. Each child runs its block on its own interpreter (no
GIL shared with the other blocks or with this process) and reports over a pipe of its
own (``--progress-fd``): every ``REPORT_PERIOD`` seconds one text line
``steps restarts reward reward ...``, its step and restart counts so far and the
episode rewards finished since its last line (``ProgressReporter``). Here one reader
thread per child folds the lines into ``finished``, ``steps`` and ``restarts``, the
attributes ``VectorBlocks`` has, so that a training loop can watch either.

Only numbers in text cross the pipe; a line that does not parse is logged and skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger("relaax_zmq.envs.blocks")

#: Seconds between a child's progress lines.
REPORT_PERIOD = 0.1
#: Seconds a stopped child gets to disconnect before it is killed.
STOP_GRACE = 10.0


def progress_line(steps: int, restarts: int, rewards: Sequence[float]) -> str:
    """One progress line: ``steps restarts reward ...`` and a newline."""
    return " ".join([str(steps), str(restarts), *(repr(float(r)) for r in rewards)]) + "\n"


def parse_progress_line(line: str) -> tuple[int, int, list[float]]:
    """``(steps, restarts, rewards)`` of a ``progress_line``; ValueError naming what came
    when it is not one."""
    fields = line.split()
    if len(fields) < 2:
        raise ValueError(f"expected 'steps restarts reward ...', got {line!r}")
    try:
        steps, restarts = int(fields[0]), int(fields[1])
        rewards = [float(f) for f in fields[2:]]
    except ValueError:
        raise ValueError(f"expected integers, then numbers, got {line!r}") from None
    if steps < 0 or restarts < 0:
        raise ValueError(f"expected counts >= 0, got {line!r}")
    return steps, restarts, rewards


class ProgressReporter:
    """The child's side: a daemon thread that writes a runner's progress to ``stream``
    every ``period`` seconds, and once more when ``close`` is called."""

    def __init__(
        self,
        read: Callable[[], tuple[int, int, Sequence[float]]],
        stream: IO[str],
        period: float = REPORT_PERIOD,
    ) -> None:
        """``read`` returns (steps, restarts, every finished reward so far)."""
        self._read, self._stream, self._period = read, stream, period
        self._sent = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(self._period):
            self._write()

    def _write(self) -> None:
        with self._lock:
            steps, restarts, finished = self._read()
            new = list(finished[self._sent :])
            self._sent += len(new)
            try:
                self._stream.write(progress_line(steps, restarts, new))
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # the watcher has gone: nothing to tell
                self._closed.set()

    def close(self) -> None:
        """Write the last line and stop (the stream stays open)."""
        if not self._closed.is_set():
            self._closed.set()
            self._thread.join()
            self._write()


class BlockChild:
    """One child process and what its progress lines have said so far."""

    def __init__(self, block: int, process: subprocess.Popen, stream: IO[str]) -> None:
        self.block, self.process, self.stream = block, process, stream
        self.steps = 0
        self.restarts = 0


class BlockProcesses:
    """Every block of the app at ``config_path`` as a child process (module docstring).

    Args:
        config_path: the app YAML file the children load.
        blocks: how many blocks the app has (``len(environment.block_sessions())``).
        overrides: ``KEY=VALUE`` config overrides passed to every child (``--set``).
        env: the children's environment variables (this process's by default).
    """

    def __init__(
        self,
        config_path: Path,
        blocks: int,
        overrides: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        if blocks < 1:
            raise ValueError(f"expected at least 1 block, got {blocks}")
        self.config_path = Path(config_path)
        self.blocks = blocks
        self.overrides = list(overrides)
        self.env = env
        self.finished: list[float] = []  #: every episode reward, in the order it arrived
        self._children: list[BlockChild] = []
        self._stopping = threading.Event()
        self._started = threading.Event()

    @property
    def steps(self) -> int:
        """Environment steps the blocks have reported."""
        return sum(child.steps for child in self._children)

    @property
    def restarts(self) -> int:
        """EpisodeRestarts the blocks have reported."""
        return sum(child.restarts for child in self._children)

    def stop(self) -> None:
        """Ask every child to stop (SIGTERM: it disconnects and exits)."""
        self._stopping.set()
        if self._started.is_set():
            self._signal(signal.SIGTERM)

    def run(self, max_episodes: int | None = None) -> list[float]:
        """Start the children, fold in their progress until all have exited, return
        ``finished``. A child that exits non-zero, unless stopped, stops the others and
        raises RuntimeError naming its block and exit status."""
        overrides = list(self.overrides)
        if max_episodes is not None:
            overrides.append(f"environment.max_episodes={max_episodes}")
        readers = [self._start(block, overrides) for block in range(self.blocks)]
        self._started.set()
        if self._stopping.is_set():
            self._signal(signal.SIGTERM)
        failed: list[BlockChild] = []
        try:
            while any(child.process.poll() is None for child in self._children):
                for child in self._children:
                    code = child.process.poll()
                    if code not in (None, 0) and not self._stopping.is_set():
                        failed.append(child)
                        self.stop()
                time.sleep(0.2)
            for child in self._children:  # one exiting last may have failed too
                if child.process.returncode != 0 and not self._stopping.is_set():
                    failed.append(child)
            for reader in readers:
                reader.join()
        finally:
            self._reap()
        if failed:
            child = failed[0]
            raise RuntimeError(
                f"environment block {child.block} of {self.config_path} exited with "
                f"status {child.process.returncode}"
            )
        return self.finished

    def _start(self, block: int, overrides: Sequence[str]) -> threading.Thread:
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "relaax_zmq.envs", "--config", str(self.config_path)]
        command += [f"--set={pair}" for pair in overrides]
        command += ["--block", str(block), "--progress-fd", str(write_fd)]
        try:
            process = subprocess.Popen(command, pass_fds=(write_fd,), env=self.env)
        finally:
            os.close(write_fd)  # the child holds the only write end: EOF when it exits
        child = BlockChild(block, process, os.fdopen(read_fd, "r"))
        self._children.append(child)
        reader = threading.Thread(
            target=self._read, args=(child,), daemon=True, name=f"block-{block}-progress"
        )
        reader.start()
        return reader

    def _read(self, child: BlockChild) -> None:
        with child.stream:
            for line in child.stream:
                try:
                    steps, restarts, rewards = parse_progress_line(line)
                except ValueError as exc:
                    log.warning("block %d progress: %s", child.block, exc)
                    continue
                child.steps, child.restarts = steps, restarts
                self.finished.extend(rewards)

    def _signal(self, signum: int) -> None:
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signum)

    def _reap(self) -> None:
        """Every child gone: those still running get SIGTERM, then SIGKILL after the grace."""
        self._signal(signal.SIGTERM)
        for child in self._children:
            try:
                child.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("block %d did not stop in %g s: killed", child.block, STOP_GRACE)
                child.process.kill()
                child.process.wait()
