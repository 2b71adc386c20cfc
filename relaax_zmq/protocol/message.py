"""The decoded form of one RLX message, shared by both codecs."""

from __future__ import annotations

from typing import Any

import numpy as np

from relaax_zmq.protocol.constants import VERSION, role_name, type_name


class Message:
    """One RLX message: the header's fields and its tensors by role.

    ``tensors`` maps a role code (``Role``) to a numpy array. Decoded arrays are
    read-only views on the received frames; encoders send the arrays' own
    buffers. Tensors are encoded in ascending role order.
    """

    __slots__ = ("type", "flags", "sequence", "session_id", "session_count", "tensors", "version")

    def __init__(
        self,
        type: int,
        *,
        flags: int = 0,
        sequence: int = 0,
        session_id: int = 0,
        session_count: int = 1,
        tensors: dict[int, np.ndarray] | None = None,
        version: int = VERSION,
    ) -> None:
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.session_id = session_id
        self.session_count = session_count
        self.tensors = {} if tensors is None else tensors
        self.version = version

    def tensor(self, role: int) -> np.ndarray | None:
        """The tensor of ``role``, or None when the message has none."""
        return self.tensors.get(role)

    def header_fields(self) -> tuple[int, int, int, int, int, int]:
        """(version, type, flags, sequence, session_id, session_count)."""
        return (
            self.version,
            self.type,
            self.flags,
            self.sequence,
            self.session_id,
            self.session_count,
        )

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        if self.header_fields() != other.header_fields():
            return False
        if sorted(self.tensors) != sorted(other.tensors):
            return False
        return all(_same_array(self.tensors[r], other.tensors[r]) for r in self.tensors)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{role_name(role)}={arr.dtype}{list(arr.shape)}" for role, arr in self.tensors.items()
        )
        return (
            f"Message({type_name(self.type)}, v{self.version}, flags={self.flags:#x}, "
            f"seq={self.sequence}, session={self.session_id}x{self.session_count}, [{parts}])"
        )


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape, same wire dtype and the same bytes (NaN equals an identical NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or (a.dtype.kind, a.dtype.itemsize) != (b.dtype.kind, b.dtype.itemsize):
        return False
    little = a.dtype.newbyteorder("<")
    return np.ascontiguousarray(a, little).tobytes() == np.ascontiguousarray(b, little).tobytes()
