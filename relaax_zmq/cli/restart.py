"""``relaax-zmq restart NAME``: stop and start one daemon (``worker-0``) or role (``workers``)."""

from __future__ import annotations

import argparse

from relaax_zmq.cli.common import CliError, add_app_option
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.stop import namespecs
from relaax_zmq.cli.supervisor import Supervisor

HELP = "restart one daemon or role"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="program (worker-0) or role (workers)")
    add_app_option(parser)


def run(args: argparse.Namespace) -> int:
    supervisor = Supervisor(RunFolder.of(args.config))
    if not supervisor.running():
        raise CliError(f"nothing runs for {args.config}; start it with relaax-zmq run")
    (spec,) = namespecs(supervisor, [args.name])
    supervisor.restart(spec)
    for info in supervisor.processes():
        if spec in (info.namespec, f"{info.group}:*"):
            print(f"{info.name}: {info.state} ({info.description})")
    return 0
