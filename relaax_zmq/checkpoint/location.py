"""The interface every checkpoint location implements (disk folder, S3 prefix)."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Entry(NamedTuple):
    """A stored object: its checkpoint name and size in bytes."""

    name: str
    size: int


class Location(Protocol):
    """Somewhere checkpoints are stored by name; ``write`` is atomic (all or nothing)."""

    #: Human-readable place, for logs and errors (a folder path, ``s3://bucket/prefix``).
    description: str

    def uri(self, name: str) -> str:
        """Where the object ``name`` lives (a path or ``s3://`` URI)."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name`` atomically: readers see the old object or all of it."""
        ...

    def list(self) -> list[Entry]:
        """Every object whose name is a checkpoint name (temporary objects excluded)."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes of ``name``."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name`` (no error if it is already gone)."""
        ...
