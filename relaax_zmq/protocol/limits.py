"""Size limits a decoder enforces before it builds anything."""

from __future__ import annotations

from dataclasses import dataclass

from relaax_zmq.errors import ConfigError
from relaax_zmq.protocol.constants import MAX_NDIM


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-message limits of the RLX decoder (and encoder).

    Attributes:
        max_elements: most elements one tensor may hold.
        max_tensors: most tensors one message may carry (header.tensor_count).
        max_sessions: most sessions one message may address (header.session_count).
    """

    max_elements: int = 1 << 28
    max_tensors: int = 64
    max_sessions: int = 4096

    def __post_init__(self) -> None:
        for name, low, high in (
            ("max_elements", 1, 1 << 62),
            ("max_tensors", 0, 0xFFFF),
            ("max_sessions", 1, 0xFFFFFFFF),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(
                    f"protocol.{name}", f"expected an int in [{low}, {high}], got {value!r}"
                )

    @property
    def max_ndim(self) -> int:
        """Most dimensions a tensor may have (fixed by the descriptor layout)."""
        return MAX_NDIM


DEFAULT_LIMITS = Limits()
