"""Start training an app from scratch without losing its earlier run.

The shards restore the newest checkpoint when they start (and when supervisord restarts
one), so running an app again continues where it stopped: at or past
``max_global_step`` it stops at once. A fresh start sets the earlier run aside, deleting
nothing: the checkpoint folder and the metrics folder are renamed to
``<name>.previous-<YYYYmmdd-HHMMSS>`` beside them, and checkpoints in S3 move from
``<prefix>/`` to ``<prefix>.previous-<YYYYmmdd-HHMMSS>/`` in the same bucket (copied, then
the originals deleted once every copy is in). The new run writes anew, and its learning
curve holds only itself.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from relaax_zmq.checkpoint.s3 import S3Location
from relaax_zmq.config import AppConfig
from relaax_zmq.config.parameter_servers import S3Config


class FreshStartError(RuntimeError):
    """The app's earlier run cannot be set aside (its message says why)."""


@dataclasses.dataclass(frozen=True)
class SetAside:
    """One part of the earlier run moved aside: ``old`` to ``new`` (folders or s3:// URIs)."""

    old: str
    new: str
    detail: str = ""

    def __str__(self) -> str:
        return f"earlier run set aside: {self.old} -> {self.new}{self.detail}"


def previous_run_folders(config: AppConfig) -> list[Path]:
    """The app's folders that hold an earlier run and exist: checkpoints, then metrics
    (one inside the other moves with it, so only the outer one is named)."""
    outer: list[Path] = []
    for folder in (config.parameter_servers.checkpoint.dir, config.metrics.logdir):
        if folder is None or not folder.exists() or any(folder.is_relative_to(o) for o in outer):
            continue
        outer = [o for o in outer if not o.is_relative_to(folder)] + [folder]
    return outer


def set_aside_previous_run(
    config: AppConfig, stamp: str | None = None, *, s3_client: Any = None
) -> list[SetAside]:
    """Set the earlier run aside (module docstring); what moved. ``FreshStartError`` when
    a new name is taken (nothing moved), S3 fails (the originals stay; copies made under
    the new prefix may remain) or a rename fails. ``s3_client``: a boto3 client (default:
    the config's)."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    folders = [(f, f.with_name(f"{f.name}.previous-{stamp}")) for f in previous_run_folders(config)]
    for _, new in folders:
        if new.exists():
            raise FreshStartError(f"cannot set the earlier run aside: {new} exists already")
    moved: list[SetAside] = []
    s3 = config.parameter_servers.checkpoint.s3
    if s3 is not None:
        moved += _set_aside_s3(s3, stamp, s3_client)
    for old, new in folders:
        try:
            old.rename(new)
        except OSError as exc:
            raise FreshStartError(f"cannot rename {old} to {new.name}: {exc}") from exc
        moved.append(SetAside(str(old), new.name))
    return moved


def previous_prefix(prefix: str, stamp: str) -> str:
    """Where ``set_aside_previous_run`` moves the checkpoints under S3 ``prefix``."""
    base = prefix.rstrip("/")
    return f"{base}.previous-{stamp}/" if base else f"previous-{stamp}/"


def _set_aside_s3(s3: S3Config, stamp: str, client: Any) -> list[SetAside]:
    old = S3Location(s3, client)
    new = S3Location(dataclasses.replace(s3, prefix=previous_prefix(old.prefix, stamp)), old.client)
    try:
        entries = old.list()
        if not entries:
            return []
        if new.list():
            raise FreshStartError(
                f"cannot set the earlier run aside: {new.description} holds checkpoints already"
            )
        for entry in entries:  # every copy first: nothing is deleted before all are in
            old.copy_to(entry.name, new)
        for entry in entries:
            old.delete(entry.name)
    except FreshStartError:
        raise
    except Exception as exc:  # boto3's errors: no credentials, no bucket, no network ...
        raise FreshStartError(
            f"cannot set the checkpoints in {old.description} aside: {type(exc).__name__}: {exc}"
        ) from exc
    return [SetAside(old.description, new.description, f" ({len(entries)} checkpoints)")]


def set_aside_report(moves: list[SetAside]) -> str:
    """What ``set_aside_previous_run`` did, in words."""
    if not moves:
        return "fresh start: no earlier run to set aside"
    return "\n".join(str(move) for move in moves)
