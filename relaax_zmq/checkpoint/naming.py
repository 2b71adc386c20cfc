"""Checkpoint file names: ``ckpt-<global_step:012d>-shard<k>of<S>.h5``, one per (step, shard)."""

from __future__ import annotations

import re
from typing import NamedTuple

_NAME = re.compile(r"^ckpt-(\d{12,})-shard(\d+)of(\d+)\.h5$")
_TEMP = re.compile(r"^\.(ckpt-\d{12,}-shard\d+of\d+\.h5)\.([^/]*)\.tmp$")


class CheckpointName(NamedTuple):
    """What a checkpoint's name says: its global step and shard."""

    global_step: int
    shard: int
    shards: int


def checkpoint_name(global_step: int, shard: int, shards: int) -> str:
    """The file name of shard ``shard`` of ``shards`` at ``global_step`` (sorts by step)."""
    return f"ckpt-{global_step:012d}-shard{shard}of{shards}.h5"


def parse_name(name: str) -> CheckpointName | None:
    """The step and shard in a checkpoint name; None for anything else (temporary files too)."""
    match = _NAME.match(name)
    if match is None:
        return None
    step, shard, shards = (int(group) for group in match.groups())
    return CheckpointName(step, shard, shards)


def temp_name(name: str, tag: str) -> str:
    """A hidden temporary name for ``name`` while it is written (``tag``: unique per writer).

    ``LocalLocation`` tags with ``<pid>-<random>``: ``temp_writer`` reads the pid back.
    """
    return f".{name}.{tag}.tmp"


def temp_writer(name: str) -> int | None:
    """The pid of the process that wrote a temporary name; None if it does not say."""
    match = _TEMP.match(name)
    pid = match.group(2).split("-")[0] if match else ""
    return int(pid) if pid.isdigit() else None


def parse_temp_name(name: str) -> CheckpointName | None:
    """The checkpoint a temporary name was going to become; None if not a temporary name."""
    match = _TEMP.match(name)
    return parse_name(match.group(1)) if match else None
