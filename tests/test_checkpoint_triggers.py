"""Save triggers: every_steps and every_seconds, on an injected clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relaax_zmq.checkpoint import Checkpoint, CheckpointManager, SaveTrigger
from relaax_zmq.config import CheckpointConfig


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(step: int) -> Checkpoint:
    params = np.zeros(4, dtype=np.float32)
    return Checkpoint(
        global_step=step, shard=0, shards=1, offset=0, params=params, param_count=4, algorithm="t"
    )


def test_every_steps_counts_from_the_last_save() -> None:
    trigger = SaveTrigger(every_steps=100, every_seconds=None, clock=Clock())
    assert not trigger.due(99) and trigger.due(100) and trigger.due(150)
    trigger.mark_saved(150)
    assert not trigger.due(249) and trigger.due(250)
    assert not trigger.due(150)  # nothing new since the save


def test_every_seconds_counts_from_the_last_save() -> None:
    clock = Clock(1000.0)
    trigger = SaveTrigger(every_steps=None, every_seconds=900.0, clock=clock)
    assert not trigger.due(1)
    clock.now = 1899.9
    assert not trigger.due(1)
    clock.now = 1900.0
    assert trigger.due(1)
    assert not trigger.due(1, now=1500.0)  # an explicit ``now`` wins over the clock
    trigger.mark_saved(1)
    assert not trigger.due(2)
    assert trigger.due(2, now=2800.0)
    assert not trigger.due(1, now=10**6)  # never twice for the same step


def test_whichever_comes_first_triggers() -> None:
    clock = Clock(0.0)
    trigger = SaveTrigger(every_steps=10, every_seconds=60.0, clock=clock)
    assert trigger.due(10, now=1.0)  # steps first
    trigger.mark_saved(10, now=1.0)
    assert trigger.due(11, now=61.0)  # then time
    assert not trigger.due(11, now=60.9)


def test_without_triggers_nothing_is_ever_due() -> None:
    trigger = SaveTrigger(every_steps=None, every_seconds=None, clock=Clock())
    assert not trigger.due(10**9, now=10**12)


def test_the_manager_restarts_the_triggers_on_save_and_restore(tmp_path: Path) -> None:
    clock = Clock(0.0)
    config = CheckpointConfig(dir=tmp_path, every_steps=50, every_seconds=900.0)
    manager = CheckpointManager(config, shard=0, shards=1, clock=clock)
    assert not manager.due(49) and manager.due(50)
    clock.now = 100.0
    manager.save(make(70))
    assert not manager.due(119) and manager.due(120)
    assert not manager.due(71, now=999.9) and manager.due(71, now=1000.0)

    clock.now = 5000.0
    restarted = CheckpointManager(config, shard=0, shards=1, clock=clock)
    assert restarted.due(60)  # knows nothing yet: 60 steps since 0
    assert restarted.restore().global_step == 70  # type: ignore[union-attr]
    assert not restarted.due(100) and restarted.due(120)
    assert not restarted.due(71, now=5899.0) and restarted.due(71, now=5900.0)
    restarted.mark_saved(200, now=6000.0)
    assert not restarted.due(249) and restarted.due(250)


def test_the_default_is_every_fifteen_minutes(tmp_path: Path) -> None:
    clock = Clock(0.0)
    manager = CheckpointManager(CheckpointConfig(dir=tmp_path), shard=0, shards=1, clock=clock)
    assert not manager.due(10**6, now=899.0) and manager.due(1, now=900.0)
