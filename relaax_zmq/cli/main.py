"""``relaax-zmq COMMAND ...``: parse the command line and run one subcommand.

Exit status: 0 on success, 1 on failure (a message on stderr), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from relaax_zmq.cli.common import PROG, CliError, warn
from relaax_zmq.errors import RelaaxError

#: Subcommand -> module of relaax_zmq.cli that implements it.
COMMANDS = {
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
    "keys": "keys",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Create, run and inspect relaax-zmq apps (docs/cli.md).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module_name in COMMANDS.items():
        module = importlib.import_module(f"relaax_zmq.cli.{module_name}")
        sub = commands.add_parser(
            command,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


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
