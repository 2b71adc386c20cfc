"""Handing freed heap memory back to the operating system after blocks go.

glibc keeps the memory ``free`` returns inside its arenas, so a broker that served a burst
of clients (their connections' buffers, the messages they queued, their blocks) would keep
all of it resident after they left. ``malloc_trim(0)`` gives every free page back; it takes
a few milliseconds, so the broker calls it at most once per ``TRIM_INTERVAL`` seconds and only
after blocks were released. Without glibc (musl, macOS) nothing is trimmed.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Seconds between two trims at least.
TRIM_INTERVAL = 5.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` from the C library this process runs on, or None."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def trim() -> bool:
    """Give free heap pages back to the operating system; False where there is no glibc."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class Trimmer:
    """Trims after blocks were released (``removed`` grew), at most once per ``interval``."""

    def __init__(self, interval: float = TRIM_INTERVAL, release: Callable[[], bool] = trim):
        self.interval = interval
        self._release = release
        self._removed = 0
        self._last = -float("inf")
        self.trims = 0  #: trims done

    def tick(self, now: float, removed: int) -> None:
        """Called periodically with the count of blocks removed so far."""
        if removed == self._removed or now - self._last < self.interval:
            return
        self._removed, self._last = removed, now
        if self._release():
            self.trims += 1
            log.debug("freed heap memory handed back (trim %d)", self.trims)
