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
    """The app's folders that hold an earlier run and exist: checkpoints, then metrics."""
    folders = [config.parameter_servers.checkpoint.dir, config.metrics.logdir]
    return [f for f in folders if f is not None and f.exists()]


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
