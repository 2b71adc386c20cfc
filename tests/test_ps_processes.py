"""Shards as real processes: killed and restarted under a client, stopped by signal or step limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exchange_support import Daemon, start_daemon
from test_ps_shards import clients, ps_section, wait_for

from relaax_zmq.config import AppConfig, load_config
from relaax_zmq.ps import load_spec, shard_bounds
from relaax_zmq.testing import LINEAR_PG_PATH

pytestmark = pytest.mark.timeout(90)

ALGORITHM = {"actions": 4, "state_size": 4, "optimizer": "sgd", "learning_rate": 0.1}


def write_ps_app(folder: Path, shards: int, **ps: Any) -> tuple[Path, AppConfig]:
    """An app file running ``linear_pg`` on ``shards`` shards (free ports), and its config."""
    app = {
        "version": 1,
        "log_level": "INFO",
        "environment": {"run": "bandit", "seed": 7},
        "algorithm": {"path": str(LINEAR_PG_PATH), "config": ALGORITHM},
        "parameter_servers": ps_section(shards, heartbeat_interval=0.2, **ps),
    }
    path = folder / "app.yaml"
    path.write_text(json.dumps(app, indent=1))
    return path, load_config(path)


def start_shard(path: Path, shard: int, tag: str = "") -> Daemon:
    return start_daemon(f"shard{shard}{tag}", "relaax_zmq.ps", path, "--shard", str(shard))


def test_a_killed_and_restarted_shard_is_resynced_before_it_gets_gradients(tmp_path) -> None:
    # silence after 10 x 0.2 s: a restart is quicker, so step 3 sees the new incarnation first
    path, config = write_ps_app(tmp_path, 2, heartbeat_liveness=10)
    spec = load_spec(config)
    assert spec is not None
    initial = spec.initial_vector(7)
    second = shard_bounds(spec.param_count, 2)[1]
    daemons = [start_shard(path, 0), start_shard(path, 1)]
    try:
        with clients(config, "w0", count=spec.param_count) as (client,):
            assert client.wait_consistent(20), [d.output() for d in daemons]
            grad = np.ones(spec.param_count, np.float32)
            assert client.push(grad.copy(), [0, 0], steps=1, episodes=0) == 2
            assert client.wait_consistent(5, newer_than=0)

            # 1. killed: silence marks it out of sync; its slices are held back, not queued
            daemons[1].kill9()
            wait_for(lambda: client.counters.silences == 1, 10, "the silence", poll=[client])
            assert client.push(grad.copy(), [1, 1], steps=1, episodes=0) == 1
            assert client.counters.skipped_unsynced == 1
            assert client.wait_consistent(0.5, newer_than=1) is False  # shard 1 is gone

            # 2. restarted (no checkpoint): it adopts the version the client reports, and
            # the client takes its fresh weights before pushing to it again
            daemons[1] = start_shard(path, 1, "b")
            assert client.wait_consistent(20, newer_than=1), daemons[1].output()
            vector, versions, _ = client.weights()
            assert list(versions) == [2, 2]
            assert client.counters.restarts == 1
            np.testing.assert_array_equal(vector[second.offset :], initial[second.offset :])
            assert client.push(grad.copy(), versions, steps=1, episodes=0) == 2
            assert client.wait_consistent(5, newer_than=2)

            # 3. killed and restarted before the silence shows: the new incarnation tells
            daemons[1].kill9()
            daemons[1] = start_shard(path, 1, "c")
            wait_for(lambda: client.counters.restarts == 2, 20, "the new incarnation", [client])
            assert client.wait_consistent(10, newer_than=2)
            vector, versions, _ = client.weights()
            np.testing.assert_array_equal(vector[second.offset :], initial[second.offset :])
            assert client.counters.silences == 1  # the restart was seen by incarnation
        assert "adopted" in daemons[1].output()
        assert [d.stop() for d in daemons] == [0, 0]  # SIGTERM: clean exit
    finally:
        for daemon in daemons:
            daemon.stop()


def test_shard_daemons_exit_0_by_themselves_at_max_global_step(tmp_path) -> None:
    path, config = write_ps_app(tmp_path, 2, max_global_step=100)
    spec = load_spec(config)
    assert spec is not None
    daemons = [start_shard(path, 0), start_shard(path, 1)]
    try:
        with clients(config, "w0", count=spec.param_count) as (client,):
            assert client.wait_consistent(20), [d.output() for d in daemons]
            for _ in range(3):
                client.poll()
                grad = np.full(spec.param_count, 0.5, np.float32)
                client.push(grad, client.weights()[1], steps=40, episodes=1)
            wait_for(lambda: client.stopping, 10, "the stop announcement", poll=[client])
            codes = [d.proc.wait(10) for d in daemons]
        assert codes == [0, 0]
        assert all("stopping" in d.output() for d in daemons)
    finally:
        for daemon in daemons:
            daemon.stop()


def test_a_bad_shard_index_is_refused_with_status_1(tmp_path) -> None:
    path, _ = write_ps_app(tmp_path, 2)
    daemon = start_shard(path, 5)
    assert daemon.proc.wait(20) == 1
    assert "--shard: expected 0..1, got 5" in daemon.output()


def test_a_stopped_shard_checkpoints_and_its_restart_restores(tmp_path) -> None:
    path, config = write_ps_app(tmp_path, 1, checkpoint={"dir": str(tmp_path / "ckpt")})
    spec = load_spec(config)
    assert spec is not None
    daemon = start_shard(path, 0)
    try:
        with clients(config, "w0", count=spec.param_count) as (client,):
            assert client.wait_consistent(20), daemon.output()
            grad = np.ones(spec.param_count, np.float32)
            for version in range(3):
                assert client.push(grad.copy(), [version], steps=5, episodes=1) == 1
                assert client.wait_consistent(5, newer_than=version)
            trained, _, _ = client.weights()
        assert daemon.stop() == 0
        assert len(list((tmp_path / "ckpt").glob("ckpt-*.h5"))) == 1, daemon.output()
        daemon = start_shard(path, 0, "b")
        with clients(config, "w1", count=spec.param_count) as (client,):
            assert client.wait_consistent(20), daemon.output()
            vector, versions, _ = client.weights()
            assert list(versions) == [3], "the restored version"
            np.testing.assert_array_equal(vector, trained)
            assert not np.array_equal(vector, spec.initial_vector(7))
    finally:
        daemon.stop()
