"""``relaax-zmq logs NAME [-f]``: a daemon's log (``supervisord`` for supervisord's own).

Prints the last ``--lines`` lines; ``-f`` keeps printing what is appended until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option
from relaax_zmq.cli.runfolder import RunFolder

HELP = "show (and follow) a daemon's log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="program (broker, worker-0...) or supervisord")
    add_app_option(parser)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("-n", "--lines", type=int, default=50, help="lines to show (50)")


def log_path(folder: RunFolder, name: str) -> Path:
    if name == "supervisord":
        return folder.supervisord_log
    path = folder.log_of(name)
    if not path.exists():
        known = sorted(p.stem for p in folder.logs.glob("*.log")) if folder.logs.is_dir() else []
        choices = ", ".join(["supervisord", *known]) if known else "none yet (relaax-zmq run)"
        raise CliError(f"no log of {name!r} in {folder.logs}; logs: {choices}")
    return path


def last_lines(path: Path, count: int) -> tuple[str, int]:
    """The last ``count`` lines of ``path`` and the file size read up to."""
    data = path.read_bytes()
    lines = data.decode(errors="replace").splitlines(keepends=True)
    return "".join(lines[-count:] if count > 0 else []), len(data)


def follow(path: Path, offset: int, interval: float = 0.3) -> None:
    """Print what is appended to ``path`` from ``offset`` on (a rotated log restarts at 0)."""
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            offset = 0
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            offset = size
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        time.sleep(interval)


def run(args: argparse.Namespace) -> int:
    path = log_path(RunFolder.of(args.config), args.name)
    text, offset = last_lines(path, args.lines)
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.follow:
        try:
            follow(path, offset)
        except KeyboardInterrupt:
            return 0
    return 0
