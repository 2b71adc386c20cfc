"""Which metrics are recorded: ``metrics.enabled`` (None: all) minus ``metrics.disabled``.

An entry matches a metric's bare name (``entropy``) or its tag (``worker/entropy``, the
sender's kind, a slash, the name), so a name can be turned off for one kind of sender only.
``disabled`` wins over ``enabled``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Decisions remembered per (kind, name); the cache is cleared when it grows past this.
_CACHE_SIZE = 4096


class MetricFilter:
    """``allows(name, kind)``: whether a metric passes ``enabled`` and ``disabled``."""

    def __init__(self, enabled: Iterable[str] | None = None, disabled: Iterable[str] = ()) -> None:
        self.enabled = None if enabled is None else frozenset(enabled)
        self.disabled = frozenset(disabled)
        self._cache: dict[tuple[str, str], bool] = {}

    @property
    def passes_all(self) -> bool:
        """True when nothing is filtered out."""
        return self.enabled is None and not self.disabled

    def allows(self, name: str, kind: str = "") -> bool:
        """Whether metric ``name`` sent by a sender of ``kind`` is recorded."""
        if self.passes_all:
            return True
        key = (kind, name)
        allowed = self._cache.get(key)
        if allowed is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            allowed = self._cache[key] = self._decide(name, f"{kind}/{name}" if kind else name)
        return allowed

    def _decide(self, name: str, tag: str) -> bool:
        if name in self.disabled or tag in self.disabled:
            return False
        return self.enabled is None or name in self.enabled or tag in self.enabled
