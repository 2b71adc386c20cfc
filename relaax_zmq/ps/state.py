"""What a shard saves and restores, and the hook through which checkpoints plug in.

``ShardState`` is everything a shard needs to resume: its slice, the optimizer
state of the slice, its version and its counters. ``Shard.state()`` takes one,
``Shard.load_state()`` puts one back. Checkpoint files are not the shard's
business: a ``ShardCheckpoints`` object (built around the checkpoint package's
``CheckpointManager``) is handed to ``Shard`` and called from one place,
``Shard._checkpoint``: ``restore()`` when the shard starts, ``due(global_step)``
once per loop turn, ``save(state)`` when due and when the shard stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(eq=False, kw_only=True)
class ShardState:
    """One shard's resumable state.

    Attributes:
        shard, shards: which shard of how many.
        offset: first element of the slice in the flat vector of ``param_count``.
        params: (count,) float32 copy of the slice.
        version: the slice's version (updates applied, or adopted; see docs).
        global_step: environment steps counted from the gradients this shard received.
        optimizer: the optimizer's arrays (``exp_avg``, ``exp_avg_sq`` ...) and ``step``.
        counters: integers worth keeping (``episodes``, ``gradients`` ...).
        extras: other float arrays of the algorithm (shard 0: ``statistics``, the shared
            statistics' totals).
        score: the workers' recent mean of ``best_metric`` (ranks checkpoints); None: unknown.
    """

    shard: int
    shards: int
    offset: int
    param_count: int
    params: np.ndarray
    version: int
    global_step: int
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    score: float | None = None


class ShardCheckpoints(Protocol):
    """Where a shard's checkpoints go and come from (see the module docstring)."""

    def restore(self) -> ShardState | None:
        """The newest valid state of this shard, or None to start from the initial weights."""
        ...

    def due(self, global_step: int) -> bool:
        """Whether a checkpoint should be saved now."""
        ...

    def save(self, state: ShardState) -> bool:
        """Save ``state`` (crash-consistently); called in the shard's thread. False when a
        location did not take it (logged there; the shard counts it and trains on)."""
        ...
