"""``relaax-zmq COMMAND ...``: parse the command line and run one subcommand.

Exit status: 0 on success, 1 on failure (a message on stderr), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
import sys
from collections.abc import Sequence

from relaax_zmq.cli.common import PROG, CliError, warn
from relaax_zmq.errors import RelaaxError

#: Subcommand -> module of relaax_zmq.cli that implements it.
COMMANDS = {
    "train": "train",
    "eval": "evaluate",
    "new": "new",
    "run": "run",
    "status": "status",
    "stop": "stop",
    "restart": "restart",
    "logs": "logs",
    "generate": "generate",
    "config": "presets",
    "checkpoints": "checkpoints",
    "export": "export",
    "play": "play",
    "plot": "plot",
    "compare": "compare",
    "keys": "keys",
    "autoscale": "autoscale",
    "deploy": "deploy",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Create, run and inspect relaax-zmq apps (docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module_name in COMMANDS.items():
        module = importlib.import_module(f"relaax_zmq.cli.{module_name}")
        sub = commands.add_parser(
            command,
            help=plain_text(module.HELP),
            description=plain_text(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def version() -> str:
    """The installed package's version (``unknown`` when it is not installed)."""
    try:
        return importlib.metadata.version("relaax-zmq")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def plain_text(text: str) -> str:
    """A docstring for a terminal: reStructuredText literals (````x````) become plain ``x``."""
    return re.sub(r"``(.+?)``", r"\1", text, flags=re.DOTALL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``relaax-zmq``; the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as exc:
        warn(str(exc))
        return exc.code
    except (RelaaxError, OSError, ValueError) as exc:  # bad input: one clear line
        warn(f"{args.command}: {exc}")
        return 1
    except KeyboardInterrupt:
        warn(f"{args.command}: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
