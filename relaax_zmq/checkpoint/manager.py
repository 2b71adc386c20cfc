"""``CheckpointManager``: one shard's saves to every location, retention, triggers and restore."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from relaax_zmq.checkpoint.errors import CheckpointError
from relaax_zmq.checkpoint.hdf5 import decode, encode
from relaax_zmq.checkpoint.local import LocalLocation
from relaax_zmq.checkpoint.location import Entry, Location
from relaax_zmq.checkpoint.naming import checkpoint_name, parse_name
from relaax_zmq.checkpoint.record import Checkpoint
from relaax_zmq.checkpoint.retention import Inspection, Status, to_delete
from relaax_zmq.checkpoint.s3 import S3Location
from relaax_zmq.checkpoint.triggers import SaveTrigger
from relaax_zmq.config.parameter_servers import CheckpointConfig

log = logging.getLogger(__name__)


def make_locations(config: CheckpointConfig, s3_client: Any = None) -> list[Location]:
    """The configured locations, disk first: ``config.dir`` and ``config.s3`` (either may be null)."""
    locations: list[Location] = []
    if config.dir is not None:
        locations.append(LocalLocation(config.dir))
    if config.s3 is not None:
        locations.append(S3Location(config.s3, client=s3_client))
    return locations


class CheckpointManager:
    """Saves, prunes and restores the checkpoints of shard ``shard`` of ``shards``.

    ``save`` writes to every location (``config.dir``, ``config.s3``); ``restore`` returns the
    newest valid checkpoint across all of them; ``due``/``mark_saved`` implement the
    ``every_steps``/``every_seconds`` triggers. Whether to restore on start
    (``config.restore``) is the caller's decision. Thread-safe.
    """

    def __init__(
        self,
        config: CheckpointConfig,
        *,
        shard: int,
        shards: int,
        clock: Callable[[], float] = time.time,
        s3_client: Any = None,
    ) -> None:
        if not 0 <= shard < shards:
            raise CheckpointError(f"shard {shard} is not in 0..{shards - 1}")
        self.config = config
        self.shard = shard
        self.shards = shards
        self.clock = clock
        self.locations = make_locations(config, s3_client)
        self.trigger = SaveTrigger(config.every_steps, config.every_seconds, clock)
        #: (location, error text) of every location that failed the last ``save``.
        self.last_failures: list[tuple[str, str]] = []
        #: saves that reached no location (each logged as an error; ``due`` then backs off).
        self.failed_saves = 0
        self._known: dict[tuple[str, str, int], Inspection] = {}
        self._lock = threading.Lock()

    # -- triggers ---------------------------------------------------------------------------

    def due(self, global_step: int, now: float | None = None) -> bool:
        """True when a checkpoint is due (never without a location)."""
        return bool(self.locations) and self.trigger.due(global_step, now)

    def mark_saved(self, global_step: int, now: float | None = None) -> None:
        """Restart the triggers from ``global_step`` (``save`` and ``restore`` call it)."""
        self.trigger.mark_saved(global_step, now)

    # -- save -------------------------------------------------------------------------------

    def save(self, checkpoint: Checkpoint) -> list[str]:
        """Write ``checkpoint`` to every location, then prune each; the URIs written.

        A failing location is logged and listed in ``last_failures``; the others still get the
        checkpoint. Raises ``CheckpointError`` only when every location failed; ``due`` is then
        false for a while (``SaveTrigger.mark_failed``) and ``failed_saves`` counts it.
        """
        if (checkpoint.shard, checkpoint.shards) != (self.shard, self.shards):
            raise CheckpointError(
                f"this manager saves shard {self.shard} of {self.shards}, "
                f"got shard {checkpoint.shard} of {checkpoint.shards}"
            )
        data = encode(checkpoint)
        name = checkpoint_name(checkpoint.global_step, self.shard, self.shards)
        with self._lock:
            written: list[str] = []
            failures: list[tuple[str, str]] = []
            for location in self.locations:
                try:
                    location.write(name, data)
                except Exception as exc:  # any location may fail in its own way; others go on
                    error = f"{type(exc).__name__}: {exc}"
                    log.error("checkpoint not saved to %s: %s", location.uri(name), error)
                    failures.append((location.description, error))
                    continue
                written.append(location.uri(name))
                inspection = Inspection(Status.VALID, checkpoint.score)
                self._known[(location.description, name, len(data))] = inspection
                self._prune(location)
            self.last_failures = failures
            if failures and not written:
                self.failed_saves += 1
                delay = self.trigger.mark_failed()
                details = "; ".join(f"{where}: {error}" for where, error in failures)
                raise CheckpointError(
                    f"checkpoint {name} not saved anywhere ({details}); next try in {delay:g} s"
                )
            self.trigger.mark_saved(checkpoint.global_step)
            if written:
                log.info("checkpoint step %d saved to %s", checkpoint.global_step, written)
            return written

    def prune(self) -> list[str]:
        """Apply retention to every location now; the URIs deleted (``save`` does this itself)."""
        with self._lock:
            return [uri for location in self.locations for uri in self._prune(location)]

    def _prune(self, location: Location) -> list[str]:
        try:
            mine = self._mine(location)
        except Exception as exc:
            log.warning("cannot list %s for retention: %s", location.description, exc)
            return []
        sizes = {entry.name: entry.size for _, entry in mine}
        doomed = to_delete(
            [(step, entry.name) for step, entry in mine],
            lambda name: self._inspect(location, name, sizes[name]),
            keep=self.config.keep,
            keep_best=self.config.keep_best,
        )
        deleted = []
        for name in doomed:
            try:
                location.delete(name)
            except Exception as exc:
                log.warning("cannot delete %s: %s", location.uri(name), exc)
                continue
            self._known.pop((location.description, name, sizes[name]), None)
            deleted.append(location.uri(name))
            log.info("retention deleted %s", location.uri(name))
        return deleted

    def _inspect(self, location: Location, name: str, size: int) -> Inspection:
        key = (location.description, name, size)
        if key in self._known:
            return self._known[key]
        try:
            data = location.read(name)
        except Exception as exc:
            log.warning("cannot read %s: %s", location.uri(name), exc)
            return Inspection(Status.UNKNOWN)
        try:
            checkpoint = self._decode(location, name, data)
        except CheckpointError as exc:
            log.warning("invalid checkpoint: %s", exc)
            found = Inspection(Status.CORRUPT)
        else:
            found = Inspection(Status.VALID, checkpoint.score)
        self._known[key] = found
        return found

    # -- restore ----------------------------------------------------------------------------

    def restore(self, step: int | None = None) -> Checkpoint | None:
        """The newest valid checkpoint of this shard across all locations (disk first on a tie).

        ``step``: only checkpoints of that global step (see ``latest_complete_step``). Corrupt
        or unreadable files are skipped with a warning; None when no valid one exists. Temporary
        files left by a writer that is gone are removed first (``remove_stray``).
        """
        self.remove_stray()
        with self._lock:
            candidates: list[tuple[int, int, Location, Entry]] = []
            for order, location in enumerate(self.locations):
                try:
                    mine = self._mine(location)
                except Exception as exc:
                    log.warning("cannot list %s: %s", location.description, exc)
                    continue
                for found_step, entry in mine:
                    if step is None or found_step == step:
                        candidates.append((found_step, -order, location, entry))
            candidates.sort(key=lambda item: item[:2], reverse=True)
            for _, _, location, entry in candidates:
                uri = location.uri(entry.name)
                try:
                    data = location.read(entry.name)
                except Exception as exc:
                    log.warning("skipping %s: cannot read it: %s", uri, exc)
                    continue
                key = (location.description, entry.name, entry.size)
                try:
                    checkpoint = self._decode(location, entry.name, data)
                except CheckpointError as exc:
                    log.warning("skipping invalid checkpoint: %s", exc)
                    self._known[key] = Inspection(Status.CORRUPT)
                    continue
                self._known[key] = Inspection(Status.VALID, checkpoint.score)
                self.trigger.mark_saved(checkpoint.global_step)
                log.info("restored checkpoint step %d from %s", checkpoint.global_step, uri)
                return checkpoint
            return None

    def remove_stray(self) -> list[str]:
        """Remove this shard's temporary files on disk whose writer is gone (killed mid-save);
        the paths removed. Safe while another process of this shard saves."""
        removed = []
        with self._lock:
            for location in self.locations:
                if isinstance(location, LocalLocation):
                    mine = checkpoint_name(0, self.shard, self.shards)
                    found = location.remove_stray(mine, keep_live=True)
                    removed += [location.uri(name) for name in found]
        return removed

    def latest_complete_step(self) -> int | None:
        """The newest global step with a checkpoint of every shard (by name) in some location."""
        return latest_complete_step(self.locations, self.shards)

    # -- helpers ----------------------------------------------------------------------------

    def _mine(self, location: Location) -> list[tuple[int, Entry]]:
        """(global step, entry) of this shard's checkpoints in ``location`` (same shard count)."""
        mine = []
        for entry in location.list():
            parsed = parse_name(entry.name)
            if parsed is not None and (parsed.shard, parsed.shards) == (self.shard, self.shards):
                mine.append((parsed.global_step, entry))
        return mine

    def _decode(self, location: Location, name: str, data: bytes) -> Checkpoint:
        """Decode and verify ``data``, and check that its contents match its name."""
        uri = location.uri(name)
        checkpoint = decode(data, uri)
        parsed = parse_name(name)
        found = (checkpoint.global_step, checkpoint.shard, checkpoint.shards)
        if parsed is None or tuple(parsed) != found:
            raise CheckpointError(
                f"{uri}: holds step {found[0]} of shard {found[1]} of {found[2]}, "
                "which is not what its name says"
            )
        return checkpoint


def complete_steps(locations: Sequence[Location], shards: int) -> list[int]:
    """Global steps, newest first, that have a checkpoint of every shard (names only, unverified).

    A shard's file may be in any of the locations. Unlistable locations are skipped (logged).
    """
    present: dict[int, set[int]] = {}
    for location in locations:
        try:
            entries = location.list()
        except Exception as exc:
            log.warning("cannot list %s: %s", location.description, exc)
            continue
        for entry in entries:
            parsed = parse_name(entry.name)
            if parsed is not None and parsed.shards == shards:
                present.setdefault(parsed.global_step, set()).add(parsed.shard)
    return sorted((step for step, found in present.items() if len(found) == shards), reverse=True)


def latest_complete_step(
    locations: Sequence[Location] | CheckpointConfig, shards: int, *, s3_client: Any = None
) -> int | None:
    """The newest step of ``complete_steps``; ``locations`` may be a ``CheckpointConfig``."""
    if isinstance(locations, CheckpointConfig):
        locations = make_locations(locations, s3_client)
    steps = complete_steps(locations, shards)
    return steps[0] if steps else None
