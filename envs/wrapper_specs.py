"""The ``environment.wrappers`` entries, parsed without importing gymnasium (the config checks them)."""

from __future__ import annotations

#: Names ``parse_wrapper`` knows, and whether they take arguments.
KNOWN = {"atari": False, "frame_stack": True, "select": True, "clip_reward": False}


def parse_wrapper(spec: str) -> tuple[str, tuple[int, ...]]:
    """``"frame_stack:4"`` -> ``("frame_stack", (4,))``; ValueError naming what is wrong."""
    name, _, args = spec.partition(":")
    if name not in KNOWN:
        raise ValueError(f"wrapper {spec!r}: expected one of {sorted(KNOWN)}")
    if KNOWN[name] != bool(args):
        need = "arguments after ':'" if KNOWN[name] else "no arguments"
        raise ValueError(f"wrapper {spec!r}: {name} takes {need}")
    try:
        values = tuple(int(v) for v in args.split(",")) if args else ()
    except ValueError:
        raise ValueError(f"wrapper {spec!r}: expected integers after ':'") from None
    if name == "frame_stack" and (len(values) != 1 or values[0] < 1):
        raise ValueError(f"wrapper {spec!r}: expected frame_stack:N with N >= 1")
    if name == "select" and (not values or min(values) < 0):
        raise ValueError(f"wrapper {spec!r}: expected select:I,J,... with indices >= 0")
    return name, values
