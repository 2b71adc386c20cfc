"""Watch a running app in the foreground: live progress, crashes, and when to stop.

Progress comes from the system's own telemetry: environment steps and shard 0's
global step from the broker's admin endpoint (the workers' heartbeats), episode
rewards from the metrics collector's event files (``client/episode_reward``,
written every ``metrics.flush_interval`` seconds), checkpoints from the checkpoint
folder. Training ends at ``--target-reward`` (the mean of the last ``--window``
rewards), ``--time-limit``, ``parameter_servers.max_global_step`` (or every shard
exited 0), the environment clients exiting 0 (``max_episodes``), a daemon that
supervisord gave up on (FATAL), or SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from relaax_zmq.cli.events import EPISODE_REWARD, ScalarReader
from relaax_zmq.cli.supervisor import ProcessInfo, Supervisor
from relaax_zmq.config import AppConfig
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.progress import (
    UPDATE_INTERVAL,
    ProgressDisplay,
    ProgressState,
    mean_of_last,
    open_display,
)
from relaax_zmq.runtime.watching import (
    checkpoint_files,
    reported_global_step,
    served_steps,
    stop_reason,
    target_met,
)


@dataclass
class Outcome:
    """Why the watch ended and what it saw last."""

    reason: str
    progress: ProgressState
    failed: bool = False
    reached: bool = False


@dataclass
class Watch:
    """The state of a foreground watch over one app."""

    config: AppConfig
    supervisor: Supervisor
    window: int = 100
    target_reward: float | None = None
    time_limit: float | None = None
    display: ProgressDisplay = field(default_factory=lambda: open_display("plain"))
    rewards: list[float] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (pid, start)

    def __post_init__(self) -> None:
        self.reader = ScalarReader(self.config.metrics.logdir, {EPISODE_REWARD})
        self.reader_since = time.time()
        self.last_steps = 0
        self.last_global = 0

    def progress(self) -> ProgressState:
        """Where training stands now (see the module docstring)."""
        for point in self.reader.read().get(EPISODE_REWARD, []):
            if point.wall_time >= self.reader_since - 1.0:
                self.rewards.append(point.value)
        try:
            workers = app_broker_status(self.config, timeout=1.0)["workers"]
        except Exception:  # the broker is restarting: keep the last figures
            workers = None
        if workers is not None:
            self.last_steps = max(self.last_steps, served_steps(workers))
            self.last_global = max(self.last_global, reported_global_step(workers))
        return ProgressState(
            elapsed=time.monotonic() - self.start,
            steps=self.last_steps,
            episodes=len(self.rewards),
            mean_reward=mean_of_last(self.rewards, self.window),
            global_step=self.last_global,
            checkpoints=checkpoint_files(self.config),
        )

    def check_processes(self) -> str | None:
        """Report restarts; the reason to stop (clients done, shards done, a FATAL daemon)."""
        programs = self.supervisor.processes()
        for info in programs:
            key = (info.pid, info.start)
            before = self.seen.get(info.name)
            if before is not None and info.pid and before[1] and key != before:
                self.display.note(self._crash_report(info, "restarted by supervisord"))
            if info.pid:
                self.seen[info.name] = key
        fatal = [p for p in programs if p.state == "FATAL"]
        if fatal:
            for info in fatal:
                gave_up = "keeps crashing; supervisord gave up (FATAL)"
                self.display.note(self._crash_report(info, gave_up))
            return f"{', '.join(p.name for p in fatal)} failed"
        envs = [p for p in programs if p.group == "envs"]
        if envs and all(p.state == "EXITED" and p.exitstatus == 0 for p in envs):
            return "the environment clients finished"
        shards = [p for p in programs if p.group == "ps"]
        if shards and all(p.state == "EXITED" and p.exitstatus == 0 for p in shards):
            return "the shards stopped (max_global_step)"
        return None

    def _crash_report(self, info: ProcessInfo, what: str) -> str:
        tail = self.supervisor.tail(info.name, 1500).rstrip()
        return f"warning: {info.name} {what} ({info.description})\n--- end of its log:\n{tail}"

    def run(self, stop: threading.Event) -> Outcome:
        """Show progress until a stop condition (module docstring); why it stopped. The
        caller closes the display."""
        limit = self.config.parameter_servers.max_global_step
        while True:
            state = self.progress()
            processes = self.check_processes()  # reports restarts every round
            reason = stop_reason(
                state,
                limit,
                target_reward=self.target_reward,
                time_limit=self.time_limit,
                interrupted=stop.is_set(),
            )
            reason = reason or processes
            reached = target_met(state, self.target_reward)
            self.display.update(state)
            if reason is not None:
                failed = reason.endswith("failed")
                return Outcome(reason, state, failed=failed, reached=reached)
            stop.wait(UPDATE_INTERVAL)


def stop_event() -> tuple[threading.Event, Callable[[], None]]:
    """An event set by SIGINT/SIGTERM, and a function that restores the old handlers."""
    event = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: event.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return event, restore


def curves_base(run_root: Path) -> Path:
    """Where ``run`` writes the learning curves of a finished run (``.png`` and ``.csv``)."""
    return run_root / "learning-curve"
