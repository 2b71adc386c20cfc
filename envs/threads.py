"""Run calls side by side, one daemon thread each, and wait for all of them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def run_in_threads(calls: Sequence[Callable[[], object]], name: str = "runner") -> None:
    """Call each of ``calls`` in its own daemon thread (``name-i``) and return when all have
    returned. The wait wakes up every 0.2 s, so the main thread still handles signals."""
    threads = [
        threading.Thread(target=call, daemon=True, name=f"{name}-{i}")
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
