"""SIGKILL a worker, a shard, the metrics collector and the broker under load, repeatedly.

Every daemon is a real process (``support.FaultStack``), the clients are real sockets stepping
the bandit, liveness is the product's default (1 s heartbeats x liveness 3). Each test measures
(``support.Figures``, printed and written to ``figures.json``) and asserts:

- worker: the broker drops it within 3.5 s, its sessions go to the other worker (every client
  it hosted is told with RESTART and steps again), and the restarted worker registers again;
- shard: every worker notices within 3.5 s, resyncs with the shard restarted from its
  checkpoint (its weight versions follow the shard's) and training goes on (the global step
  grows past where it was);
- collector: clients keep stepping at their rate while it is gone (senders never block), and
  worker and shard metrics land in a new event file once it is back;
- broker: every worker notices within 3.5 s, clients time out and step again on the restarted
  broker within 40 s, the workers register again and every session is back.

The default tests kill a few times; the ``slow`` ones many times.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import (
    DETECTION_BOUND_S,
    FaultStack,
    Figures,
    Stepper,
    first_log_time,
    log_matches,
    step_rate,
    steppers,
    wait_for,
    wait_worker_dropped,
    write_app,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.timeout(300)

#: Clients a restarted broker must be serving again within (seconds after its restart).
RECONNECT_BOUND_S = 40.0
CLIENTS = 4


@dataclass
class Run:
    """A running app, its stepping clients and the figures of the test."""

    stack: FaultStack
    clients: list[Stepper]
    figures: Figures

    def all_stepping_after(self, at: float, timeout: float, what: str) -> float:
        """Wait until every client got an action after ``at``; the time the last one did."""
        clients = self.clients
        wait_for(lambda: all(c.first_action_after(at) for c in clients), timeout, what)
        return max(c.first_action_after(at) or 0.0 for c in clients)

    def each_worker_logged(self, pattern: str, after: float) -> dict[str, float]:
        """The first time each worker logged ``pattern`` after ``after`` ({} until all did)."""
        stack = self.stack
        found = {
            name: first_log_time(stack.log_paths(name), pattern, after)
            for name in stack.names("worker")
        }
        return found if all(t is not None for t in found.values()) else {}  # type: ignore[return-value]

    def check_clients(self) -> None:
        errors = [c.error for c in self.clients if c.error is not None]
        assert not errors, f"{errors}\n{self.stack.logs()}"


@contextmanager
def running(folder: Path, test: str, shards: int = 1, **options: Any) -> Iterator[Run]:
    """An app with two workers and ``shards`` shards, ``CLIENTS`` clients stepping."""
    with Figures(test, folder) as figures:
        path = write_app(folder, workers=2, shards=shards)
        with FaultStack(path) as stack, steppers(path, CLIENTS, **options) as clients:
            run = Run(stack, clients, figures)
            wait_for(lambda: stack.global_step() > 100, 30, "clients stepping, training")
            yield run
            run.check_clients()
        run.check_clients()


# -- workers ---------------------------------------------------------------------------------


def kill_worker(run: Run) -> None:
    """SIGKILL the worker with the most sessions; its sessions move; restart it."""
    stack, figures = run.stack, run.figures
    workers = stack.worker_status()
    victim = max(workers, key=lambda name: workers[name]["sessions"])
    hosted = workers[victim]["sessions"]
    rehomed = stack.status()["counters"]["rehomed_blocks"]  # type: ignore[index]
    killed = stack.kill(victim)

    detection = figures.append("detection_s", wait_worker_dropped(stack, victim, killed))
    gone = killed + detection
    assert detection <= DETECTION_BOUND_S, stack.logs()
    status = stack.status()
    assert status is not None
    assert status["counters"]["rehomed_blocks"] - rehomed == hosted  # blocks of one session
    assert sum(w["sessions"] for w in status["workers"]) == CLIENTS
    last = run.all_stepping_after(gone, 15, "every client stepping again")
    figures.append("all_clients_stepping_s", last - killed)
    told = [c.index for c in run.clients if c.restarted_after(killed)]
    assert len(told) == hosted, f"{hosted} sessions re-homed, told: {told}"

    started = stack.restart(victim)
    synced = wait_for(
        lambda: victim in stack.synced_workers() and time.time(),
        30,
        f"{victim} registered and synced again",
    )
    figures.append("restarted_worker_ready_s", synced - started)


def kill_workers(folder: Path, kills: int) -> None:
    with running(folder, f"worker_sigkill_x{kills}") as run:
        step = run.stack.global_step()
        for _ in range(kills):
            kill_worker(run)
        wait_for(lambda: run.stack.global_step() > step + 100, 30, "training going on")
        run.figures.add("global_step", run.stack.global_step())


def test_killed_workers_are_dropped_their_sessions_rehomed_and_restarts_register(tmp_path):
    kill_workers(tmp_path, kills=3)


@pytest.mark.slow
def test_ten_worker_kills(tmp_path):
    kill_workers(tmp_path, kills=10)


# -- shards ----------------------------------------------------------------------------------


def kill_shard(run: Run, shard: int) -> None:
    """SIGKILL ``shard`` once it checkpointed under training; restart it; workers resync."""
    stack, figures, name = run.stack, run.figures, f"shard-{shard}"
    log = stack.log_paths(name)[-1]
    wait_for(
        lambda: log_matches(log, r"checkpoint at global step [1-9]"),
        15,
        f"a checkpoint of {name} made under training",
    )
    step = stack.global_step()
    killed = stack.kill(name)

    noticed = wait_for(
        lambda: run.each_worker_logged(rf"shard {shard} silent for", killed),
        10,
        f"every worker to notice {name} is gone",
    )
    detection = figures.append("detection_s", max(noticed.values()) - killed)
    assert detection <= DETECTION_BOUND_S, stack.logs()
    run.all_stepping_after(max(noticed.values()), 10, f"clients stepping while {name} is down")

    started = stack.restart(name)
    restored = wait_for(
        lambda: log_matches(stack.log_paths(name)[-1], r"restored version (\d+)", started),
        30,
        f"{name} restored from its checkpoint",
    )
    version = int(restored[0][1].group(1))
    assert version > 0, "it restored a checkpoint made under training"
    resynced = wait_for(
        lambda: run.each_worker_logged(rf"shard {shard}: resynced at version", started),
        30,
        f"every worker resynced with {name}",
    )
    figures.append("resync_s", max(resynced.values()) - started)
    synced = wait_for(
        lambda: len(stack.synced_workers()) == 2 and stack.synced_workers(),
        10,
        "both workers synced with both shards",
    )
    assert all(p["min_version"] >= version for p in synced.values()), (version, synced)
    wait_for(lambda: stack.global_step() > step, 30, "the global step past where it was")
    figures.append("training_past_kill_s", time.time() - started)


def kill_shards(folder: Path, kills: int) -> None:
    with running(folder, f"shard_sigkill_x{kills}", shards=2) as run:
        for i in range(kills):
            kill_shard(run, (i + 1) % 2)  # shard 1 first, then shard 0 (the global step's)
        run.figures.add("global_step", run.stack.global_step())


def test_killed_shards_are_noticed_restored_and_workers_resync(tmp_path):
    kill_shards(tmp_path, kills=2)


@pytest.mark.slow
def test_six_shard_kills(tmp_path):
    kill_shards(tmp_path, kills=6)


# -- the metrics collector -------------------------------------------------------------------


def event_files(folder: Path) -> set[Path]:
    return set(folder.glob("**/events.out.tfevents.*"))


def tags_in(event_file: Path) -> list[str]:
    """The scalar tags recorded in one event file."""
    accumulator = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator.Tags()["scalars"]


def longest_wait(clients: list[Stepper], start: float, end: float) -> float:
    """The longest wait between two actions of one client between ``start`` and ``end``."""
    gaps = []
    for client in clients:
        times = [start, *(t for t in client.action_times if start < t <= end), end]
        gaps.append(max(b - a for a, b in zip(times, times[1:], strict=False)))
    return max(gaps)


def kill_collector(run: Run, metrics: Path, window: float = 2.0) -> None:
    """Step rates before and while the collector is gone; metrics again after its restart."""
    stack, figures, clients = run.stack, run.figures, run.clients
    time.sleep(window)
    before = step_rate(clients, time.time() - window, time.time())
    old_files = event_files(metrics)
    killed = stack.kill("collector")
    time.sleep(window)
    during = step_rate(clients, killed, time.time())
    wait = longest_wait(clients, killed, time.time())
    figures.append("steps_per_s_before", before)
    figures.append("steps_per_s_collector_down", during)
    figures.append("longest_client_wait_collector_down_s", wait)
    assert during >= 0.5 * before, (before, during)
    assert wait < 2.0, f"a client waited {wait:.2f} s for an action"

    started = stack.restart("collector")

    def new_metrics() -> bool:
        for file in event_files(metrics) - old_files:
            kinds = {tag.split("/")[0] for tag in tags_in(file)}
            if {"worker", "ps"} <= kinds:
                return True
        return False

    wait_for(new_metrics, 20, "worker and shard metrics in a new event file")
    figures.append("metrics_flowing_again_s", time.time() - started)


def kill_collectors(folder: Path, kills: int) -> None:
    with running(folder, f"collector_sigkill_x{kills}") as run:
        for _ in range(kills):
            kill_collector(run, folder / "metrics")


def test_a_killed_collector_blocks_no_one_and_metrics_flow_after_its_restart(tmp_path):
    kill_collectors(tmp_path, kills=1)


@pytest.mark.slow
def test_three_collector_kills(tmp_path):
    kill_collectors(tmp_path, kills=3)


# -- the broker ------------------------------------------------------------------------------


def kill_broker(run: Run) -> None:
    """SIGKILL the broker, restart it a second later; workers and clients come back."""
    stack, figures, clients = run.stack, run.figures, run.clients
    killed = stack.kill("broker")
    time.sleep(1.0)  # a supervisor restarts it about this fast
    started = stack.restart("broker")

    noticed = wait_for(
        lambda: run.each_worker_logged(r"broker silent for", killed),
        10,
        "every worker to notice the broker is gone",
    )
    detection = figures.append("worker_detection_s", max(noticed.values()) - killed)
    assert detection <= DETECTION_BOUND_S, stack.logs()
    registered = wait_for(
        lambda: len(stack.synced_workers()) == 2 and time.time(),
        30,
        "both workers registered with the new broker",
    )
    figures.append("workers_registered_after_restart_s", registered - started)

    last = run.all_stepping_after(started, RECONNECT_BOUND_S + 10, "clients back")
    reconnect = [(c.first_action_after(started) or 0.0) - started for c in clients]
    figures.append("client_reconnect_after_restart_s", reconnect)
    figures.append("client_reconnect_after_kill_s", last - killed)
    assert last - started <= RECONNECT_BOUND_S, reconnect
    assert all(c.restarted_after(killed) for c in clients), "each was told to start over"
    status = stack.status()
    assert status is not None and status["sessions"]["sessions"] == CLIENTS


def kill_brokers(folder: Path, kills: int) -> None:
    # a client gives up an init after retry_deadline: well beyond the bound measured here
    with running(folder, f"broker_sigkill_x{kills}", retry_deadline=120.0) as run:
        run.figures.add("client_request_timeout_s", run.stack.config.broker.client_request_timeout)
        for _ in range(kills):
            kill_broker(run)


def test_clients_and_workers_come_back_to_a_restarted_broker(tmp_path):
    kill_brokers(tmp_path, kills=1)


@pytest.mark.slow
def test_three_broker_kills(tmp_path):
    kill_brokers(tmp_path, kills=3)
