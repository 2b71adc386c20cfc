"""The autoscaler under a real ramp of sessions: workers follow demand up and back down.

Run: ``python -m bench.autoscale [--peak 256] [--block 8] [--worker-sessions 64] [--max 4]``.
A broker and the autoscaler (``autoscale.enabled``; it runs the workers as its children) are
started for real (``LocalStack``), with the numpy linear policy so that a worker starts in
about a second. Client threads, one block of ``--block`` sessions each, step fake episodes
of 20 steps. The ramp:

1. ``--block`` sessions on the minimum of 1 worker: steps/s at min;
2. one more block every ``--every`` seconds up to ``--peak`` sessions; blocks the broker
   refuses (no worker has room) retry until the autoscaler's new worker serves them;
3. the peak held: steps/s at max;
4. blocks closed down to ``--keep`` (the first and the last opened: on different workers,
   so that a drain has to move a block at its episode end), until the autoscaler is back
   at its minimum.

It prints the numbers over time (workers, sessions, capacity, refused inits), the time from
the first refused session to the next worker serving, the inits refused, steps/s at min
and at max, and ends with one JSON line. No session may be lost or restarted: the broker's
``lost_blocks`` and ``rehomed_blocks`` and the clients' restarts are reported (all 0), with
the blocks drains moved at episode ends.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import exit_on_sigterm, print_figures_line, table
from relaax_zmq.client import VectorAgentProxy
from relaax_zmq.errors import EpisodeRestart
from relaax_zmq.runtime.admin_client import broker_status
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing import LINEAR_POLICY_PATH

#: Steps of a fake episode (the broker moves a drained worker's block at an episode's end).
EPISODE = 20


@dataclass
class Ramp:
    """The ramp's shape and the autoscaler's settings."""

    peak: int = 256
    block: int = 8
    worker_sessions: int = 64
    maximum: int = 4
    every: float = 0.5
    hold: float = 5.0
    settle: float = 60.0
    #: blocks left open after the peak (the first and the last opened)
    keep: int = 2
    #: the autoscaler's delays (``autoscale.up_after``, ``cooldown``, ``down_after``)
    up_after: float = 0.5
    cooldown: float = 1.0
    down_after: float = 2.0


class Block(threading.Thread):
    """One client block stepping fake episodes until ``stop``; counts steps and restarts."""

    def __init__(self, endpoint: str, sessions: int) -> None:
        super().__init__(daemon=True)
        self.proxy = VectorAgentProxy(endpoint, sessions, retry_deadline=120.0)
        self.sessions = sessions
        self.steps = self.restarts = 0
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        n = self.sessions
        states, rewards = np.zeros((n, 4), np.float32), np.ones(n, np.float32)
        try:
            self.proxy.connect()
            self.proxy.init()
            self.ready.set()
            step = 0
            while not self.stop.is_set():
                step += 1
                terminal = np.full(n, step % EPISODE == 0)
                try:
                    self.proxy.update(rewards if step % EPISODE != 1 else None, states, terminal)
                except EpisodeRestart:
                    self.restarts += 1
                    step = 0
                    continue
                self.steps += n
        except BaseException as exc:  # reported by the driver
            self.failure = exc
        finally:
            self.proxy.disconnect()


@dataclass
class Outcome:
    """What a ramp measured."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    first_refusal: float | None = None
    next_worker: float | None = None
    figures: dict[str, dict[str, float]] = field(default_factory=dict)


def write_app(folder: Path, ramp: Ramp) -> Path:
    """A broker on free ports and the autoscaler between 1 and ``ramp.maximum`` workers."""
    endpoints = {k: f"tcp://127.0.0.1:{free_port()}" for k in ("frontend", "backend", "admin")}
    app = {
        "version": 1,
        "log_level": "INFO",
        "environment": {"run": "gym", "name": "CartPole-v1"},
        "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
        "broker": {**endpoints, "heartbeat_interval": 0.2, "min_free_memory_mib": 0,
                   "retry_backoff_initial": 0.05, "retry_backoff_max": 0.5},
        "workers": {"max_sessions": ramp.worker_sessions},
        "autoscale": {"enabled": True, "min": 1, "max": ramp.maximum, "interval": 0.25,
                      "up_after": ramp.up_after, "cooldown": ramp.cooldown,
                      "down_after": ramp.down_after, "drain_timeout": 30.0},
    }  # fmt: skip
    path = folder / "app.yaml"
    path.write_text(json.dumps(app, indent=1))
    return path


class Watcher(threading.Thread):
    """Polls the broker's status every 0.1 s: the timeline, the first refusal, the next
    worker to serve after it."""

    def __init__(self, admin: str, outcome: Outcome) -> None:
        super().__init__(daemon=True)
        self.admin, self.outcome = admin, outcome
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.last: dict[str, Any] = {}

    def run(self) -> None:
        workers_at_refusal: int | None = None
        while not self.stop.is_set():
            try:
                status = broker_status(self.admin, timeout=2.0)
            except Exception:
                time.sleep(0.1)
                continue
            now = time.monotonic() - self.started
            live = [w for w in status["workers"] if w["alive"]]
            row = {
                "t": round(now, 2),
                "workers": len(live),
                "draining": sum(w["draining"] for w in live),
                "sessions": status["sessions"]["sessions"],
                "capacity": sum(w["capacity"] for w in live if not w["draining"]),
                "refused": status["counters"]["refused_inits"],
            }
            self.last = status
            o = self.outcome
            if o.first_refusal is None and row["refused"] > 0:
                o.first_refusal, workers_at_refusal = now, row["workers"]
            serving = [w for w in live if w["sessions"] > 0]
            if o.next_worker is None and workers_at_refusal is not None:
                if len(serving) > workers_at_refusal:
                    o.next_worker = now
            if not o.timeline or any(row[k] != o.timeline[-1][k] for k in row if k != "t"):
                o.timeline.append(row)
            time.sleep(0.1)


def rate(blocks: Sequence[Block], seconds: float) -> float:
    """Steps per second of ``blocks`` over the next ``seconds``."""
    before = sum(b.steps for b in blocks)
    time.sleep(seconds)
    return (sum(b.steps for b in blocks) - before) / seconds


def run_ramp(ramp: Ramp, folder: Path) -> Outcome:
    """The ramp of the module docstring against real daemons in ``folder``."""
    app = write_app(folder, ramp)
    outcome = Outcome()
    with LocalStack(app) as stack:
        config = stack.config
        watcher = Watcher(str(config.broker.admin), outcome)
        watcher.start()
        blocks: list[Block] = []
        try:

            def open_block() -> Block:
                block = Block(str(config.broker.frontend), ramp.block)
                block.start()
                blocks.append(block)
                return block

            open_block().ready.wait(30)
            at_min = rate(blocks, ramp.hold)
            workers_min = len([w for w in watcher.last["workers"] if w["alive"]])
            while len(blocks) * ramp.block < ramp.peak:
                open_block()
                time.sleep(ramp.every)
            deadline = time.monotonic() + ramp.settle
            while not all(b.ready.is_set() for b in blocks) and time.monotonic() < deadline:
                time.sleep(0.2)
            refused_up = watcher.last["counters"]["refused_inits"]
            at_max = rate(blocks, ramp.hold)
            workers_max = len([w for w in watcher.last["workers"] if w["alive"]])
            kept = blocks[: max(ramp.keep - 1, 0)] + blocks[-1:]
            closing = [b for b in blocks if b not in kept]
            for block in closing:
                block.stop.set()
            for block in closing:
                block.join(30)
            deadline = time.monotonic() + ramp.settle
            while time.monotonic() < deadline:
                live = [w for w in watcher.last["workers"] if w["alive"]]
                if len(live) == 1:
                    break
                time.sleep(0.2)
            workers_end = len([w for w in watcher.last["workers"] if w["alive"]])
        finally:
            for block in blocks:
                block.stop.set()
            for block in blocks:
                block.join(30)
            watcher.stop.set()
            watcher.join(5)
        counters = watcher.last["counters"]
        failures = [repr(b.failure) for b in blocks if b.failure is not None]
        if failures:
            raise RuntimeError(f"client blocks failed: {failures[:3]}")
    waited = (
        outcome.next_worker - outcome.first_refusal
        if outcome.next_worker is not None and outcome.first_refusal is not None
        else float("nan")
    )
    outcome.figures = {
        "ramp": {
            "peak_sessions": float(ramp.peak),
            "refusal_to_new_worker_s": waited,
            "refused_inits": float(refused_up),
            "workers_min": float(workers_min),
            "workers_max": float(workers_max),
            "workers_end": float(workers_end),
        },
        "steps_per_s": {"at_min": at_min, "at_max": at_max, "max_over_min": at_max / at_min},
        "lost": {
            "lost_blocks": float(counters["lost_blocks"]),
            "rehomed_blocks": float(counters["rehomed_blocks"]),
            "client_restarts": float(sum(b.restarts for b in blocks)),
            "moved_blocks": float(counters["moved_blocks"]),
        },
    }
    return outcome


def report(outcome: Outcome) -> str:
    """The numbers over time and the figures, as text."""
    rows = [["t (s)", "workers", "draining", "sessions", "capacity", "refused inits"]]
    keys = ("workers", "draining", "sessions", "capacity", "refused")
    rows += [[f"{r['t']:.1f}", *(str(r[k]) for k in keys)] for r in outcome.timeline]
    f = outcome.figures
    ramp, steps, lost = f["ramp"], f["steps_per_s"], f["lost"]
    return "\n".join(
        [
            table(rows),
            "",
            f"first refused session -> next worker serving: "
            f"{ramp['refusal_to_new_worker_s']:.2f} s; inits refused on the way up (a block "
            f"each, retries counted): {ramp['refused_inits']:.0f}",
            f"steps/s at min ({ramp['workers_min']:.0f} worker): {steps['at_min']:,.0f}; at max "
            f"({ramp['workers_max']:.0f} workers): {steps['at_max']:,.0f} "
            f"({steps['max_over_min']:.2f}x)",
            f"lost blocks {lost['lost_blocks']:.0f}, re-homed {lost['rehomed_blocks']:.0f}, "
            f"client restarts {lost['client_restarts']:.0f}, blocks moved at episode ends "
            f"{lost['moved_blocks']:.0f}; workers at the end {ramp['workers_end']:.0f}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.autoscale", description=__doc__)
    defaults = Ramp()
    parser.add_argument("--peak", type=int, default=defaults.peak, help="sessions at the peak")
    parser.add_argument("--block", type=int, default=defaults.block, help="sessions per block")
    parser.add_argument("--worker-sessions", type=int, default=defaults.worker_sessions)
    parser.add_argument("--max", type=int, default=defaults.maximum, help="most workers")
    parser.add_argument("--every", type=float, default=defaults.every, help="seconds per block")
    parser.add_argument("--hold", type=float, default=defaults.hold, help="seconds measured")
    parser.add_argument("--keep", type=int, default=defaults.keep, help="blocks left at the end")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    ramp = Ramp(args.peak, args.block, args.worker_sessions, args.max, args.every, args.hold)
    ramp.keep = args.keep
    with tempfile.TemporaryDirectory(prefix="bench-autoscale-") as folder:
        outcome = run_ramp(ramp, Path(folder))
    print(report(outcome))
    print_figures_line(outcome.figures)


if __name__ == "__main__":
    main()
