"""A restart budget for supervisord programs, so that a daemon that keeps crashing ends FATAL.

supervisord's ``startsecs``/``startretries`` only judge starts: a daemon that dies within
``startsecs`` of a start failed to start, and after ``startretries`` such failures it is
FATAL. One that crashes later (it was RUNNING) is restarted by ``autorestart`` forever.

So every program's command begins with this guard (``supervisor.render_config``)::

    python -m relaax_zmq.cli.crashguard --name NAME --history FILE --limit N --window S -- CMD...

It appends the time of this start to FILE and ``exec``s CMD: the daemon keeps the guard's
pid, so supervisord's signals and process-group handling reach it unchanged. When FILE
already holds more than N starts in the last S seconds, it refuses instead: it prints why
and exits with ``REFUSED`` at once. To supervisord that is a start that failed within
``startsecs``, so after ``startretries`` more refusals the program is FATAL, which
``relaax-zmq status`` and ``run`` report. ``relaax-zmq run`` and ``restart`` clear the
history of the programs they start (``clear_history``), so only starts supervisord made
by itself, after crashes, use up the budget.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

#: Automatic restarts a program gets within ``CRASH_WINDOW`` seconds before it is FATAL.
CRASH_LIMIT = 5
CRASH_WINDOW = 600.0
#: The guard's exit status when it refuses a start.
REFUSED = 3


def recent_starts(history: Path, window: float, now: float) -> list[float]:
    """The start times in ``history`` within ``window`` seconds before ``now`` (none: [])."""
    try:
        text = history.read_text()
    except FileNotFoundError:
        return []
    starts = []
    for line in text.split():
        try:
            started = float(line)
        except ValueError:
            continue  # a line torn by a crash of the guard itself
        if now - window <= started <= now:
            starts.append(started)
    return starts


def record_start(history: Path, now: float) -> None:
    """Append ``now`` to ``history`` (created with its folder)."""
    history.parent.mkdir(parents=True, exist_ok=True)
    with open(history, "a") as f:
        f.write(f"{now:.3f}\n")


def clear_history(history: Path) -> None:
    """Forget every start: the next one is a deliberate start, not a restart."""
    history.unlink(missing_ok=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m relaax_zmq.cli.crashguard",
        description="Record a start of a supervisord program and exec it, within its budget.",
    )
    parser.add_argument("--name", required=True, help="the program, for the message")
    parser.add_argument("--history", required=True, type=Path, help="file of start times")
    parser.add_argument("--limit", type=int, default=CRASH_LIMIT, help="restarts allowed")
    parser.add_argument("--window", type=float, default=CRASH_WINDOW, help="... in seconds")
    parser.add_argument("command", nargs="+", help="the daemon's command line (after --)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Record the start and exec the command, or refuse it (module docstring)."""
    args = parse_args(argv)
    now = time.time()
    starts = recent_starts(args.history, args.window, now)
    if len(starts) > args.limit:
        print(
            f"crashguard: {args.name} started {len(starts)}x in the last "
            f"{now - starts[0]:.0f} s (limit: {args.limit} restarts in {args.window:.0f} s); "
            f"not starting it again. Fix the cause (see the log above), then "
            f"relaax-zmq restart {args.name}",
            file=sys.stderr,
            flush=True,
        )
        return REFUSED
    record_start(args.history, now)
    try:
        os.execvp(args.command[0], args.command)
    except OSError as exc:
        print(f"crashguard: cannot run {args.command[0]}: {exc}", file=sys.stderr, flush=True)
    return 127  # reached only when the command cannot be run


if __name__ == "__main__":
    raise SystemExit(main())
