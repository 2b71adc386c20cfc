"""What the checkpoints of an app hold: steps, shards, scores, and the whole weight vector.

Every shard saves its slice per global step (docs/checkpoints.md); a step is
*complete* when every shard's file exists in some location. ``stored`` lists every
step by location; ``assemble`` joins the shards' slices of one complete step (the
newest by default) into the flat parameter vector of the model, with shard 0's
extras (the shared observation statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from relaax_zmq.checkpoint import (
    Checkpoint,
    CheckpointManager,
    complete_steps,
    make_locations,
    parse_name,
)
from relaax_zmq.checkpoint.errors import CheckpointError
from relaax_zmq.config import AppConfig


def stored(config: AppConfig) -> list[dict[str, Any]]:
    """Every stored step, newest first: location, shards present, bytes, complete or not."""
    ckpt = config.parameter_servers.checkpoint
    shards = config.parameter_servers.shards
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for location in make_locations(ckpt):
        try:
            entries = location.list()
        except Exception as exc:
            raise CheckpointError(f"cannot list {location.description}: {exc}") from None
        for entry in entries:
            parsed = parse_name(entry.name)
            if parsed is None or parsed.shards != shards:
                continue
            row = rows.setdefault(
                (location.description, parsed.global_step),
                {
                    "location": location.description,
                    "step": parsed.global_step,
                    "shards": [],
                    "bytes": 0,
                    "files": [],
                },
            )
            row["shards"].append(parsed.shard)
            row["bytes"] += entry.size
            row["files"].append(location.uri(entry.name))
    for row in rows.values():
        row["shards"].sort()
        row["complete"] = len(row["shards"]) == shards
    return sorted(rows.values(), key=lambda r: (-r["step"], r["location"]))


def latest_step(config: AppConfig) -> int:
    """The newest complete step; CheckpointError when there is none."""
    ps = config.parameter_servers
    steps = complete_steps(make_locations(ps.checkpoint), ps.shards)
    if not steps:
        where = ", ".join(loc.description for loc in make_locations(ps.checkpoint)) or "nowhere"
        raise CheckpointError(f"no complete checkpoint of {ps.shards} shard(s) in {where}")
    return steps[0]


def shard_checkpoints(config: AppConfig, step: int | None = None) -> list[Checkpoint]:
    """Every shard's checkpoint of ``step`` (the newest complete one by default), verified."""
    ps = config.parameter_servers
    step = latest_step(config) if step is None else step
    found = []
    for shard in range(ps.shards):
        manager = CheckpointManager(ps.checkpoint, shard=shard, shards=ps.shards)
        checkpoint = manager.restore(step=step)
        if checkpoint is None:
            raise CheckpointError(f"no valid checkpoint of shard {shard} at step {step}")
        found.append(checkpoint)
    return found


@dataclass
class Weights:
    """The whole model at one global step."""

    step: int
    params: np.ndarray
    algorithm: str
    score: float | None
    extras: dict[str, np.ndarray]


def assemble(config: AppConfig, step: int | None = None) -> Weights:
    """The flat parameter vector of ``step`` joined from every shard's slice."""
    parts = shard_checkpoints(config, step)
    count = parts[0].param_count
    params = np.zeros(count, np.float32)
    covered = 0
    for part in parts:
        if part.param_count != count:
            raise CheckpointError(
                f"shards disagree on the model size: {part.param_count} != {count}"
            )
        params[part.offset : part.offset + part.params.size] = part.params
        covered += part.params.size
    if covered != count:
        raise CheckpointError(f"the shards' slices cover {covered} of {count} parameters")
    return Weights(
        parts[0].global_step, params, parts[0].algorithm, parts[0].score, parts[0].extras
    )
