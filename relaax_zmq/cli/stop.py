"""``relaax-zmq stop [NAME ...]``: stop the app's daemons.

Without names: every daemon in the safe order (clients, workers, broker, shards with
a final checkpoint, collector, tensorboard), then supervisord itself. With names
(programs such as ``worker-0`` or roles such as ``workers``): only those, supervisord
keeps running.
"""

from __future__ import annotations

import argparse

from relaax_zmq.cli.common import CliError, add_app_option
from relaax_zmq.cli.programs import ROLES
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import Supervisor

HELP = "stop the app's daemons (all, or the ones named)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="program or role names")
    add_app_option(parser)


def namespecs(supervisor: Supervisor, names: list[str]) -> list[str]:
    """supervisord names (``group:*`` or ``group:name``) of program or role ``names``."""
    programs = supervisor.programs()
    found = []
    for name in names:
        if name in ROLES:
            found.append(f"{name}:*")
        elif name in programs:
            found.append(programs[name].namespec)
        else:
            known = ", ".join([*programs, *ROLES])
            raise CliError(f"no daemon or role {name!r}; expected one of {known}")
    return found


def run(args: argparse.Namespace) -> int:
    folder = RunFolder.of(args.config)
    supervisor = Supervisor(folder)
    if not supervisor.running():
        raise CliError(f"nothing runs for {args.config} (no supervisord at {folder.socket})")
    if not args.names:
        supervisor.shutdown()
        print(f"stopped every daemon of {args.config}")
        return 0
    for spec in namespecs(supervisor, args.names):
        if spec.endswith(":*"):
            supervisor.stop_groups([spec[:-2]])
        else:
            supervisor.stop_process(spec)
        print(f"stopped {spec}")
    return 0
