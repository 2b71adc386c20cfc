"""Chaos: DA3C trains CartPole while a worker or a shard is SIGKILLed (and started again)
at a fixed interval; the run still solves it, at no less than 70% of the fault-free
throughput.

``bench/chaos.py`` does the work (``compare``): the ``cartpole-da3c`` preset with its agent
pinned (``CHAOS_AGENT``: DA3C's CartPole defaults) on two workers and two shards (a kill
always leaves one of each running), checkpoints every 5 s, 16 environments in two vectorised
blocks (one on each worker), real daemon processes;
a fault-free run and a chaos run of the same app and seed, one after the other in this
process, each measured in environment steps per second over the whole run. Kills come every
interval, the first after half of one, and alternate between a worker and a shard (which one
is random).

- a kill every ``INTERVAL`` seconds, each run until it solves (mean of the
  last 100 episodes >= 475). A restart costs about 2 CPU-seconds (Python and torch) on this
  2-core machine, so kills much more often than this would measure the restarts' CPU, not
  the fault tolerance.
- the issue's schedule, a kill every 60 s, over runs of 4.5 minutes that keep training
  after they solve (both solve before the first kill): at least 4 kills, and at the end the
  chaos run's policy, judged greedily by exploit sessions, still solves (>= 475).

Both check that afterwards every worker is registered and synced with every shard again.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import Figures

ROOT = Path(__file__).resolve().parents[2]
#: Seconds between kills in the default-suite run, and the most either run may take.
INTERVAL, BUDGET = 6.0, 120.0
#: The slow run: a kill every 60 s for this long.
SLOW_INTERVAL, SLOW_DURATION = 60.0, 270.0
#: The issue's bounds: solved, at no less than this share of the fault-free throughput.
SOLVED, THROUGHPUT_RATIO = 475.0, 0.7


@pytest.fixture
def chaos(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is not installed
    return importlib.import_module("bench.chaos")


def report(name: str, folder: Path, figures: dict[str, Any]) -> None:
    found = Figures(name, folder)
    for key, value in figures.items():
        found.add(key, value)
    found.report()


@pytest.mark.slow  # two learning runs to a solve: about 70 s
@pytest.mark.timeout(2 * BUDGET + 180)
def test_kills_every_few_seconds_still_solve_at_70_percent_throughput(
    chaos: ModuleType, tmp_path: Path
) -> None:
    figures = chaos.compare(
        duration=BUDGET, interval=INTERVAL, seed=1, until_solved=True, folder=tmp_path
    )
    report("chaos", tmp_path, figures)
    free, run = figures["fault_free"], figures["chaos"]
    assert free["solved"], free  # the reference learns at all
    assert run["workers_killed"] >= 1 and run["shards_killed"] >= 1, run["killed"]
    assert run["solved"] and run["final_mean"] >= SOLVED, run
    assert figures["throughput_ratio"] >= THROUGHPUT_RATIO, figures
    assert free["recovered_s"] is not None and run["recovered_s"] is not None, figures


@pytest.mark.slow
@pytest.mark.timeout(2 * SLOW_DURATION + 300)
def test_a_kill_every_60_s_for_minutes_still_solves_and_holds(
    chaos: ModuleType, tmp_path: Path
) -> None:
    figures = chaos.compare(duration=SLOW_DURATION, interval=SLOW_INTERVAL, folder=tmp_path)
    report("chaos_60s", tmp_path, figures)
    free, run = figures["fault_free"], figures["chaos"]
    assert run["kills"] >= 4, run["killed"]
    assert free["solved"] and run["solved"], figures
    assert run["greedy_mean"] >= SOLVED, run
    assert figures["throughput_ratio"] >= THROUGHPUT_RATIO, figures
    assert free["recovered_s"] is not None and run["recovered_s"] is not None, figures
