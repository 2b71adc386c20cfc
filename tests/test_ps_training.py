"""The headline: two workers train one shared model through two shards, all real processes.

Broker + 2 workers + 2 shards + 4 bandit sessions (``python -m relaax_zmq.envs``),
the ``linear_pg`` algorithm. Afterwards an exploit session on each worker must
pull the best arm (index 3) every time: the policy both workers act with was
learned from both workers' gradients. The run shows in TensorBoard event files
(client, worker and shard figures, read back) and both shards leave a final
checkpoint ranked by the clients' mean episode reward.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack

import numpy as np
import pytest
from exchange_support import free_port, local_name, running_exchange, status, wait_until
from test_metrics_collector import events, running
from test_ps_processes import start_shard
from test_ps_shards import ps_section

from relaax_zmq.checkpoint.hdf5 import decode
from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config
from relaax_zmq.runtime.identity import host_name
from relaax_zmq.testing import LINEAR_PG_PATH

pytestmark = pytest.mark.timeout(120)

ALGORITHM = {
    "actions": 4,
    "state_size": 1,
    "batch_size": 10,
    "gamma": 0.0,
    "learning_rate": 0.1,
    "optimizer": "adam",
}
SESSIONS, EPISODES, EPISODE_LENGTH = 4, 2, 150


def _workers(admin: str) -> dict[str, dict]:
    return {local_name(w["name"]): w for w in status(admin)["workers"] if w["alive"]}


def test_two_workers_learn_the_bandit_together_through_two_shards(tmp_path) -> None:
    sections = {
        "environment": {
            "run": "bandit",
            "clients": SESSIONS,
            "max_episodes": EPISODES,
            "env_kwargs": {"episode_length": EPISODE_LENGTH},
            "seed": 1,
        },
        "algorithm": {"path": str(LINEAR_PG_PATH), "config": ALGORITHM},
        "workers": {"count": 2, "max_sessions": 64},
        "parameter_servers": ps_section(
            2, heartbeat_interval=0.2, checkpoint={"dir": str(tmp_path / "ckpt")}
        ),
        "metrics": {
            "endpoint": f"tcp://127.0.0.1:{free_port()}",
            "logdir": str(tmp_path / "tb"),
            "flush_interval": 0.2,
        },
    }
    with ExitStack() as stack:
        ex = stack.enter_context(running_exchange(tmp_path, 2, **sections))
        collector = stack.enter_context(running(load_config(ex.config)))
        shards = [start_shard(ex.config, 0), start_shard(ex.config, 1)]
        try:

            def synced() -> bool:
                workers = _workers(ex.admin).values()
                return all(
                    w["stats"].get("parameters", {}).get("synced_shards") == 2 for w in workers
                )

            wait_until(synced, 20, "both workers to get weights from both shards")
            run = subprocess.run(
                [sys.executable, "-m", "relaax_zmq.envs", "--config", str(ex.config), "--threads"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert run.returncode == 0, run.stdout + run.stderr + ex.logs()

            # an exploit session on each worker acts greedily with the shared weights
            proxies = [AgentProxy(ex.frontend), AgentProxy(ex.frontend)]
            for proxy in proxies:
                proxy.connect()
                proxy.init(exploit=True)
            hosting = {n: w["sessions"] for n, w in _workers(ex.admin).items()}
            assert hosting == {"w0": 1, "w1": 1}, hosting
            state = np.ones(1, np.float32)
            actions = [[int(p.update(state=state)) for _ in range(20)] for p in proxies]
            for proxy in proxies:
                proxy.disconnect()

            time.sleep(0.6)  # a few heartbeats: the workers' stats are final
            stats = {n: w["stats"] for n, w in _workers(ex.admin).items()}
            for name, worker in stats.items():
                assert worker["agent"]["pushes"] >= 10, (name, worker)
                assert worker["parameters"]["skipped_unsynced"] == 0, (name, worker)
            steps = sum(w["agent"]["steps"] for w in stats.values())
            global_step = max(w["parameters"]["global_step"] for w in stats.values())
            # workers with a parameter client stop cleanly too
            assert [w.stop() for w in ex.workers.values()] == [0, 0]
        finally:
            codes = [s.stop() for s in shards]
            time.sleep(0.5)  # the last batches reach the collector
        assert actions == [[3] * 20, [3] * 20], run.stdout
        assert codes == [0, 0]
        # shard 0 counted the training steps of both workers (but for the transitions
        # acted on before the first weights, and the last few waiting for a full batch)
        assert SESSIONS * EPISODES * EPISODE_LENGTH * 0.75 <= global_step <= steps
        for shard in shards:
            host = host_name()  # shards count each worker under its cluster name
            assert f"workers [w0@{host}:" in shard.output() and f" w1@{host}:" in shard.output()
    _check_event_files(collector.run_dir)
    _check_final_checkpoints(tmp_path / "ckpt")


def _check_event_files(run_dir) -> None:
    """Every built-in figure of the run is in TensorBoard's files, with sensible values."""
    acc = events(run_dir)
    tags = set(acc.Tags()["scalars"])
    for tag in (
        "client/episode_reward",
        "client/action_latency_client_ms",
        "worker/steps_per_second",
        "worker/action_latency_server_ms",
        "worker/batch_size",
        "worker/gradient_norm",
        "ps/weight_norm",
        "ps/checkpoint_failures",
        "ps/staleness",
        "ps/updates_per_second",
        "ps/global_step",
    ):
        assert tag in tags, (tag, sorted(tags))
    rewards = [e.value for e in acc.Scalars("client/episode_reward")]
    assert len(rewards) == SESSIONS * EPISODES
    assert all(e.value > 0 for e in acc.Scalars("client/action_latency_client_ms"))
    norms = [e.value for e in acc.Scalars("worker/gradient_norm")]  # 0 once the arm is learned
    assert norms and all(np.isfinite(v) and v >= 0 for v in norms)
    assert max(e.value for e in acc.Scalars("ps/updates_per_second")) > 0
    steps = [e.value for e in acc.Scalars("ps/global_step")]
    assert steps == sorted(steps) and steps[-1] > 0
    assert {e.value for e in acc.Scalars("ps/checkpoint_failures")} == {0}  # every save went


def _check_final_checkpoints(folder) -> None:
    """Each shard saved on the way out; the score is the workers' recent mean reward."""
    files = sorted(folder.glob("ckpt-*.h5"))
    assert {f.name.split("-shard")[1] for f in files} == {"0of2.h5", "1of2.h5"}, files
    for file in files:
        checkpoint = decode(file.read_bytes(), str(file))
        assert checkpoint.global_step > 0 and checkpoint.counters["version"] > 0
        # arms pay about 0.2, 0, -0.2 and -5 per pull: the learned policy scores above -1
        assert checkpoint.score is not None and -5 * EPISODE_LENGTH < checkpoint.score
