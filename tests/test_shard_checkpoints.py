"""A shard's state survives a checkpoint round trip through real HDF5 files."""

from __future__ import annotations

import numpy as np

from relaax_zmq.checkpoint import CheckpointManager
from relaax_zmq.config.parameter_servers import CheckpointConfig
from relaax_zmq.ps.checkpoints import ManagedCheckpoints, to_checkpoint
from relaax_zmq.ps.state import ShardState


def _state(step: int, version: int, score: float | None = None) -> ShardState:
    rng = np.random.default_rng(step)
    return ShardState(
        shard=1,
        shards=2,
        offset=50,
        param_count=100,
        params=rng.standard_normal(50).astype(np.float32),
        version=version,
        global_step=step,
        optimizer={"exp_avg": np.ones(50, np.float32), "step": np.array(version)},
        counters={"episodes": step // 10},
        extras={"statistics": np.array([step, 2.5, -1e9])},
        score=score,
    )


def _checkpoints(tmp_path, **options) -> ManagedCheckpoints:
    config = CheckpointConfig(dir=tmp_path, every_steps=100, every_seconds=None, **options)
    return ManagedCheckpoints(CheckpointManager(config, shard=1, shards=2), "linear_pg")


def test_state_round_trips_with_its_version(tmp_path) -> None:
    checkpoints = _checkpoints(tmp_path)
    assert checkpoints.restore() is None
    saved = _state(300, 42, score=7.5)
    checkpoints.save(saved)
    restored = _checkpoints(tmp_path).restore()
    assert restored is not None
    assert (restored.version, restored.global_step, restored.offset) == (42, 300, 50)
    assert np.array_equal(restored.params, saved.params)
    assert int(restored.optimizer["step"]) == 42
    assert restored.counters == {"episodes": 30}
    assert restored.score == 7.5
    np.testing.assert_array_equal(restored.extras["statistics"], [300, 2.5, -1e9])


def test_newest_of_several_is_restored_and_triggers_follow_the_steps(tmp_path) -> None:
    checkpoints = _checkpoints(tmp_path, keep=2)
    assert checkpoints.due(100)
    for step in (100, 200, 300):
        checkpoints.save(_state(step, step // 10))
    assert not checkpoints.due(350) and checkpoints.due(400)
    assert len(list(tmp_path.glob("ckpt-*.h5"))) == 2
    assert _checkpoints(tmp_path).restore().global_step == 300


def test_restore_can_be_switched_off(tmp_path) -> None:
    _checkpoints(tmp_path).save(_state(100, 1))
    config = CheckpointConfig(dir=tmp_path, restore=False)
    off = ManagedCheckpoints(CheckpointManager(config, shard=1, shards=2), "x", restore=False)
    assert off.restore() is None


def test_score_goes_into_the_record() -> None:
    assert to_checkpoint(_state(10, 1, score=3.0), "x").score == 3.0
    assert to_checkpoint(_state(10, 1), "x").score is None


def test_keep_best_keeps_the_best_scored_checkpoint(tmp_path) -> None:
    checkpoints = _checkpoints(tmp_path, keep=1, keep_best=1)
    for step, score in ((100, 1.0), (200, 9.0), (300, 2.0), (400, 3.0)):
        checkpoints.save(_state(step, step // 10, score=score))
    steps = sorted(int(p.name.split("-")[1].split(".")[0]) for p in tmp_path.glob("ckpt-*.h5"))
    assert steps == [200, 400]  # the best (score 9) and the newest
