"""Start training an app from scratch without losing its earlier run.

The shards restore the newest checkpoint when they start (and when supervisord restarts
one), so running an app again continues where it stopped: at or past
``max_global_step`` it stops at once. A fresh start renames the app's checkpoint folder
and metrics folder to ``<name>.previous-<YYYYmmdd-HHMMSS>`` beside them: nothing is
deleted, the new run writes new folders, and its learning curve holds only itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from relaax_zmq.config import AppConfig


class FreshStartError(RuntimeError):
    """The app's earlier run cannot be set aside (its message says why)."""


def previous_run_folders(config: AppConfig) -> list[Path]:
    """The app's folders that hold an earlier run and exist: checkpoints, then metrics
    (one inside the other moves with it, so only the outer one is named)."""
    outer: list[Path] = []
    for folder in (config.parameter_servers.checkpoint.dir, config.metrics.logdir):
        if folder is None or not folder.exists() or any(folder.is_relative_to(o) for o in outer):
            continue
        outer = [o for o in outer if not o.is_relative_to(folder)] + [folder]
    return outer


def set_aside_previous_run(config: AppConfig, stamp: str | None = None) -> list[tuple[Path, Path]]:
    """Rename the folders of ``previous_run_folders`` (module docstring); the (old, new)
    pairs. ``FreshStartError`` when the app also checkpoints to S3 (those objects are not
    moved: delete them or point ``checkpoint.s3.prefix`` elsewhere), or when a new name
    is taken."""
    s3 = config.parameter_servers.checkpoint.s3
    if s3 is not None:
        raise FreshStartError(
            "a fresh start sets aside local folders only, but this app also checkpoints to "
            f"s3://{s3.bucket}/{s3.prefix}: delete those objects or change "
            "checkpoint.s3.prefix first"
        )
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    moves = [(f, f.with_name(f"{f.name}.previous-{stamp}")) for f in previous_run_folders(config)]
    for _, new in moves:
        if new.exists():
            raise FreshStartError(f"cannot set the earlier run aside: {new} exists already")
    for old, new in moves:
        old.rename(new)
    return moves


def set_aside_report(moves: list[tuple[Path, Path]]) -> str:
    """What ``set_aside_previous_run`` did, in words."""
    if not moves:
        return "fresh start: no earlier run to set aside"
    return "\n".join(f"earlier run set aside: {old} -> {new.name}" for old, new in moves)
