"""SIGTERM each daemon of a running app under load: exit 0 within 10 s, no process left behind.

One app (collector, two shards, broker, two workers) with clients stepping, and the app's
environment runner (``python -m relaax_zmq.envs``, one child process per session). Each is
sent SIGTERM in turn while the others still run, in an order that also stops daemons whose
peers are already gone (a shard after the broker, a worker after the broker). Each must exit 0
within 10 s and leave no child process running; each shard saves a final checkpoint (the file
exists, decodes, and holds the global step the shard stopped at) and the collector leaves a
readable event file.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support import (
    TERMINATE_BOUND_S,
    FaultStack,
    Figures,
    Termination,
    kill_tree,
    log_matches,
    start_env_runner,
    steppers,
    terminate,
    wait_for,
    write_app,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from relaax_zmq.checkpoint import decode

pytestmark = pytest.mark.timeout(300)

THREAD_CLIENTS = 2
RUNNER_SESSIONS = 2


def check(stopped: Termination, figures: Figures, log: str = "") -> None:
    figures.add(f"{stopped.name}_exit_s", stopped.seconds)
    assert stopped.code == 0, f"{stopped.name} exited {stopped.code}\n{log[-3000:]}"
    assert stopped.seconds <= TERMINATE_BOUND_S
    assert not stopped.orphans, f"{stopped.name} left {stopped.orphans}"


def final_checkpoint(stack: FaultStack, shard: int, after: float) -> tuple[int, int]:
    """(global step in the shard's final summary, global step in its last checkpoint file)."""
    log = stack.log_paths(f"shard-{shard}")[-1]
    saved = log_matches(log, r"checkpoint at global step (\d+): (\S+)", after)
    assert saved, f"shard {shard} saved no checkpoint on the way out:\n{log.read_text()[-2000:]}"
    path = Path(saved[-1][1].group(2))
    checkpoint = decode(path.read_bytes(), str(path))
    assert (checkpoint.shard, checkpoint.shards) == (shard, stack.shards)
    summary = re.search(rf"shard {shard} stopped: version \d+ global_step (\d+)", log.read_text())
    assert summary, f"no final summary in {log}"
    return int(summary.group(1)), checkpoint.global_step


def test_every_daemon_exits_0_on_sigterm_leaving_no_orphans(tmp_path):
    with Figures("sigterm_each_daemon", tmp_path) as figures:
        path = write_app(tmp_path, workers=2, shards=2, environment={"clients": RUNNER_SESSIONS})
        stack = FaultStack(path)
        # clients give up soon once the broker is gone (instead of retrying for a minute)
        with (
            stack,
            steppers(path, THREAD_CLIENTS, request_timeout=2.0, retry_deadline=2.0) as clients,
        ):
            runner = start_env_runner(path, tmp_path / "envs.log")
            try:
                wanted = THREAD_CLIENTS + RUNNER_SESSIONS
                wait_for(
                    lambda: (stack.status() or {}).get("sessions", {}).get("sessions") == wanted,
                    60,
                    "the runner's sessions and the clients' stepping",
                )
                time.sleep(1.0)  # a little training, so that checkpoints hold something
                stopped = terminate("env_runner", runner)
                figures.add("env_runner_children", stopped.children)
                assert stopped.children == RUNNER_SESSIONS, "one child process per session"
                check(stopped, figures, (tmp_path / "envs.log").read_text())
            finally:
                kill_tree(runner)

            for name in ("worker-1", "collector", "shard-1", "broker", "shard-0", "worker-0"):
                if name == "broker":
                    for client in clients:
                        client.stopped.set()  # they stop stepping when their request fails
                at = time.time()
                stopped = stack.terminate(name)
                check(stopped, figures, stack.daemon(name).tail())
                if name.startswith("shard"):
                    shard = int(name[-1])
                    summary_step, saved_step = final_checkpoint(stack, shard, at)
                    figures.add(f"{name}_final_checkpoint_step", saved_step)
                    assert saved_step == summary_step > 0

        events = list((tmp_path / "metrics").glob("**/events.out.tfevents.*"))
        assert len(events) == 1
        accumulator = EventAccumulator(str(events[0]), size_guidance={"scalars": 0})
        accumulator.Reload()
        assert any(tag.startswith("ps/") for tag in accumulator.Tags()["scalars"])
