"""A shard's checkpoints: ``ShardState`` <-> ``Checkpoint`` through a ``CheckpointManager``.

``ManagedCheckpoints`` is the ``ShardCheckpoints`` a shard daemon gets when
``parameter_servers.checkpoint`` names a folder or an S3 location. The slice's
version travels as the ``version`` counter; the score (``best_metric``, for
keep-best) is the state's: the workers' recent mean of ``best_metric``.
"""

from __future__ import annotations

import logging

from relaax_zmq.checkpoint import Checkpoint, CheckpointError, CheckpointManager
from relaax_zmq.config import AppConfig
from relaax_zmq.ps.state import ShardState

log = logging.getLogger(__name__)

VERSION_COUNTER = "version"


def to_checkpoint(state: ShardState, algorithm: str) -> Checkpoint:
    """The checkpoint record of ``state``."""
    return Checkpoint(
        global_step=state.global_step,
        shard=state.shard,
        shards=state.shards,
        offset=state.offset,
        params=state.params,
        param_count=state.param_count,
        algorithm=algorithm,
        optimizer=dict(state.optimizer),
        counters={**state.counters, VERSION_COUNTER: state.version},
        extras=dict(state.extras),
        score=state.score,
    )


def to_state(checkpoint: Checkpoint) -> ShardState:
    """The shard state a checkpoint record holds."""
    counters = dict(checkpoint.counters)
    version = int(counters.pop(VERSION_COUNTER, 0))
    return ShardState(
        shard=checkpoint.shard,
        shards=checkpoint.shards,
        offset=checkpoint.offset,
        param_count=checkpoint.param_count,
        params=checkpoint.params,
        version=version,
        global_step=checkpoint.global_step,
        optimizer=dict(checkpoint.optimizer),
        counters=counters,
        extras=dict(checkpoint.extras),
        score=checkpoint.score,
    )


class ManagedCheckpoints:
    """``ShardCheckpoints`` backed by the checkpoint package (disk and/or S3)."""

    def __init__(self, manager: CheckpointManager, algorithm: str, *, restore: bool = True) -> None:
        self.manager = manager
        self.algorithm = algorithm
        self.restore_enabled = restore

    @classmethod
    def from_config(cls, config: AppConfig, shard: int) -> ManagedCheckpoints | None:
        """None when the config names no checkpoint location."""
        ps = config.parameter_servers
        if ps.checkpoint.dir is None and ps.checkpoint.s3 is None:
            return None
        manager = CheckpointManager(ps.checkpoint, shard=shard, shards=ps.shards)
        algorithm = config.algorithm.name or str(config.algorithm.path)
        return cls(manager, algorithm, restore=ps.checkpoint.restore)

    def restore(self) -> ShardState | None:
        if not self.restore_enabled:
            return None
        checkpoint = self.manager.restore()
        if checkpoint is None:
            return None
        log.info("restored shard %d at global step %d", checkpoint.shard, checkpoint.global_step)
        return to_state(checkpoint)

    def due(self, global_step: int) -> bool:
        return self.manager.due(global_step)

    def save(self, state: ShardState) -> bool:
        try:
            written = self.manager.save(to_checkpoint(state, self.algorithm))
        except CheckpointError as exc:  # every location failed: keep training, say so loudly
            log.error("checkpoint at global step %d failed: %s", state.global_step, exc)
            return False
        log.info("checkpoint at global step %d: %s", state.global_step, ", ".join(written))
        return not self.manager.last_failures
