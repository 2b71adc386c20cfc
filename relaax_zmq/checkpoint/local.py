"""``LocalLocation``: checkpoints in a folder on disk, written crash-consistently."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from relaax_zmq.checkpoint.location import Entry
from relaax_zmq.checkpoint.naming import parse_name, parse_temp_name, temp_name, temp_writer

log = logging.getLogger(__name__)

#: Temporary files this process is writing right now (never stray).
_WRITING: set[Path] = set()


class LocalLocation:
    """A folder; ``write`` goes to a hidden temporary name, fsyncs, renames, fsyncs the folder."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.description = str(self.directory)

    def uri(self, name: str) -> str:
        return str(self.directory / name)

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name``: a crash leaves the old file (or none), never a torn one.

        Temporary files of the same shard left by an interrupted write are removed first.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.remove_stray(name)
        tmp = self.directory / temp_name(name, f"{os.getpid()}-{secrets.token_hex(4)}")
        _WRITING.add(tmp)
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            _WRITING.discard(tmp)
        _fsync_directory(self.directory)

    def remove_stray(self, name: str, *, keep_live: bool = False) -> list[str]:
        """Remove temporary files meant to become a checkpoint of the same shard as ``name``.

        ``keep_live``: only those whose writer is gone (its pid is no live process, or is this
        process, which is not writing them), so that a reader may call it while the shard
        saves; without it, every one (the shard's own writer calls it before writing).
        """
        target = parse_name(name)
        removed: list[str] = []
        if target is None or not self.directory.is_dir():
            return removed
        for child in self.directory.iterdir():
            meant = parse_temp_name(child.name)
            if meant is None or (meant.shard, meant.shards) != (target.shard, target.shards):
                continue
            if keep_live and _being_written(child):
                continue
            log.warning("removing %s, left by an interrupted checkpoint write", child)
            child.unlink(missing_ok=True)
            removed.append(child.name)
        return removed

    def list(self) -> list[Entry]:
        if not self.directory.is_dir():
            return []
        entries = []
        with os.scandir(self.directory) as found:
            for item in found:
                if parse_name(item.name) is not None and item.is_file(follow_symlinks=False):
                    entries.append(Entry(item.name, item.stat(follow_symlinks=False).st_size))
        return entries

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def delete(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)


def _being_written(tmp: Path) -> bool:
    """Whether the writer ``tmp``'s name records may still be writing it."""
    pid = temp_writer(tmp.name)
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return tmp in _WRITING
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user's process
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
