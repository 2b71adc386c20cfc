"""``relaax-zmq autoscale [-c APP.yaml] [--min N] [--max M]``: scale this host's workers.

Runs in the foreground until Ctrl-C or SIGTERM: worker processes on this host, between
``--min`` and ``--max`` (the ``autoscale`` section's ``min`` and ``max`` by default), added
while the broker refuses sessions or runs near capacity, drained and removed when demand
falls (docs/autoscale.md). ``relaax-zmq run workers`` (``all``, ``servers``) runs it under
supervisord instead of ``workers.count`` fixed workers when ``autoscale.enabled``.
"""

from __future__ import annotations

import argparse

from relaax_zmq.autoscale.__main__ import add_bounds, serve
from relaax_zmq.cli.common import PROG, add_app_option, load_app

HELP = "run this host's workers, added and removed with the broker's demand"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(parser)
    add_bounds(parser)


def run(args: argparse.Namespace) -> int:
    load_app(args.config)  # a clear error for a missing or bad file before anything starts
    return serve(args.config, args.min, args.max, f"{PROG} autoscale")
