"""A shard daemon checkpointing to S3 only (moto on loopback): killed with SIGKILL, it restores.

The daemon saves every 10 global steps to the bucket; after a SIGKILL its
restart must come back at the version of the newest checkpoint in S3, with
those weights, and go on from there.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_ps_processes import start_shard, write_ps_app
from test_ps_shards import clients, wait_for

from relaax_zmq.checkpoint import parse_name
from relaax_zmq.ps import load_spec

pytestmark = pytest.mark.timeout(90)


def test_a_killed_shard_restores_its_newest_checkpoint_from_s3(
    tmp_path,
    endpoint: str,
    bucket: str,
    client,
) -> None:
    s3 = {"bucket": bucket, "prefix": "run", "endpoint_url": endpoint, "region": "us-east-1"}
    checkpoint = {"dir": None, "s3": s3, "every_steps": 10, "every_seconds": None}
    path, config = write_ps_app(tmp_path, 1, checkpoint=checkpoint)
    spec = load_spec(config)
    assert spec is not None

    def saved_steps() -> list[int]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix="run/")
        names = [item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", [])]
        return sorted(parse_name(n)[0] for n in names if parse_name(n) is not None)

    daemon = start_shard(path, 0)
    try:
        with clients(config, "w0", count=spec.param_count) as (ps,):
            assert ps.wait_consistent(20), daemon.output()
            grad = np.linspace(-1, 1, spec.param_count).astype(np.float32)
            for version in range(4):  # 4 gradients of 5 steps: saves at steps 10 and 20
                assert ps.push(grad.copy(), [version], steps=5, episodes=1) == 1
                assert ps.wait_consistent(5, newer_than=version)
            trained, _, _ = ps.weights()
            trained = trained.copy()
            wait_for(lambda: 20 in saved_steps(), 10, "the step-20 checkpoint in S3")
        daemon.kill9()
        assert not list(tmp_path.glob("**/ckpt-*.h5")), "nothing may go to disk"
        daemon = start_shard(path, 0, "-restarted")
        with clients(config, "w1", count=spec.param_count) as (ps,):
            assert ps.wait_consistent(20), daemon.output()
            vector, versions, _ = ps.weights()
            assert list(versions) == [4], daemon.output()
            np.testing.assert_array_equal(vector, trained)
            assert ps.push(grad.copy(), [4], steps=5, episodes=1) == 1
            assert ps.wait_consistent(5, newer_than=4)  # and it trains on from there
            assert ps.global_step == 25
        assert "restored" in daemon.output()
    finally:
        daemon.stop()
