"""Client and worker metrics reach TensorBoard event files through a real exchange."""

from __future__ import annotations

import numpy as np
import pytest
from exchange_support import free_port, running_exchange, wait_until
from test_metrics_collector import events, running

from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config

pytestmark = pytest.mark.timeout(120)


def test_client_and_worker_metrics_land_in_event_files(tmp_path) -> None:
    metrics = {
        "endpoint": f"tcp://127.0.0.1:{free_port()}",
        "logdir": str(tmp_path / "tb"),
        "flush_interval": 0.2,
    }
    with running_exchange(tmp_path, worker_count=1, metrics=metrics) as ex:
        with running(load_config(ex.config)) as collector:
            proxy = AgentProxy(ex.frontend)
            proxy.init()
            for reward in (1.0, 2.0):
                proxy.update(state=np.zeros(4, np.float32))
                proxy.metrics.scalar("episode_reward", reward)
                proxy.update(reward=reward, state=np.zeros(4, np.float32), terminal=True)
            proxy.disconnect()

            def landed() -> bool:
                tags = events(collector.run_dir).Tags()["scalars"]
                return "client/episode_reward" in tags and "worker/steps_per_second" in tags

            wait_until(landed, 10, "client and worker metrics in the event files")
    acc = events(collector.run_dir)
    assert [e.value for e in acc.Scalars("client/episode_reward")] == [1.0, 2.0]
    assert all(e.value >= 0 for e in acc.Scalars("worker/steps_per_second"))
