"""``relaax-zmq run [ROLE ...]``: start an app's daemons under supervisord.

Writes the supervisord configuration of the chosen roles (``programs.py``) into the
app's run folder, starts supervisord (or adds the roles to the one already running
for this app) and waits until the daemons are up: every worker registered and
holding weights from every shard when workers run, every program RUNNING
otherwise. A daemon that keeps crashing at start is reported with the end of its
log, everything started is stopped again, and the exit status is 1. A daemon that
supervisord restarts more than ``--crash-limit`` times in ``--crash-window`` seconds
is not started again (``crashguard``): it ends FATAL.

In the foreground (default) it then shows live progress (``--progress``: a live line
on a terminal, plain lines otherwise, ``json`` for one JSON object per line) and stops
by itself when training ends (``monitor.py``); Ctrl-C stops every daemon cleanly (the shards write
a final checkpoint), then it writes the learning curve and says where checkpoints,
TensorBoard files, the curve and the logs are. ``--detach`` returns once the
daemons are up (``relaax-zmq status``/``stop`` then manage them).

``--set KEY=VALUE`` changes keys of the app for this run only: the app file stays as it
is, the daemons load the app with the changes applied (``<run folder>/<app>.set.yaml``).
Training has no time limit unless ``--time-limit`` gives one (``scripts/run.sh`` gives
900 s); it ends at ``--target-reward``, ``parameter_servers.max_global_step`` or Ctrl-C.

The shards resume from the app's newest checkpoint, so a second run continues the
first; ``--fresh`` sets the earlier run aside (its checkpoint and metrics folders renamed,
its S3 checkpoints moved to a sibling prefix: ``relaax_zmq.runtime.fresh_start``) and trains from
scratch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from relaax_zmq.cli.common import (
    PROG,
    CliError,
    add_app_option,
    add_set_option,
    load_app,
    parse_set,
)
from relaax_zmq.cli.crashguard import CRASH_LIMIT, CRASH_WINDOW
from relaax_zmq.cli.curves import write_curves
from relaax_zmq.cli.monitor import Watch, curves_base, stop_event
from relaax_zmq.cli.ports import taken_endpoints
from relaax_zmq.cli.programs import (
    CHOICES,
    ROLES,
    TENSORBOARD_PORT,
    app_programs,
    env_overrides,
    expand_roles,
)
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import Supervisor
from relaax_zmq.config import AppConfig, dump_config
from relaax_zmq.runtime.daemon import EXIT_REFUSED
from relaax_zmq.runtime.extras import MissingExtra
from relaax_zmq.runtime.fresh_start import FreshStartError, set_aside_previous_run, set_aside_report
from relaax_zmq.runtime.local import app_shards, process_tree, wait_ready
from relaax_zmq.runtime.progress import add_progress_option, open_display
from relaax_zmq.runtime.watching import locations

HELP = "start the app's daemons under supervisord (and watch training)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "roles",
        nargs="*",
        default=["all"],
        metavar="ROLE",
        help=f"what to run: {', '.join(CHOICES)} (default: all)",
    )
    add_app_option(parser)
    add_set_option(parser)
    parser.add_argument("-n", "--clients", type=int, help="environment sessions (overrides)")
    parser.add_argument("--exploit", action="store_true", help="clients act greedily, no learning")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="train from scratch: rename the app's checkpoint and metrics folders to "
        "<name>.previous-<time> first, and move its S3 checkpoints to <prefix>.previous-<time>/ "
        "(without it the shards resume from the checkpoints)",
    )
    parser.add_argument(
        "-d", "--detach", action="store_true", help="return once the daemons are up"
    )
    parser.add_argument("--target-reward", type=float, help="stop when the mean reaches this")
    parser.add_argument("--window", type=int, default=100, help="rewards in the mean (100)")
    parser.add_argument(
        "--time-limit", type=float, help="stop after this many seconds (default: no limit)"
    )
    add_progress_option(parser)
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="seconds to wait for the daemons (120)"
    )
    parser.add_argument(
        "--tensorboard-port", type=int, default=TENSORBOARD_PORT, help="port of tensorboard"
    )
    parser.add_argument(
        "--crash-limit",
        type=int,
        default=CRASH_LIMIT,
        help=f"restarts after crashes before a daemon is FATAL ({CRASH_LIMIT}) ...",
    )
    parser.add_argument(
        "--crash-window",
        type=float,
        default=CRASH_WINDOW,
        help=f"... within this many seconds ({CRASH_WINDOW:.0f})",
    )


def parse_options(argv: list[str]) -> argparse.Namespace:
    """``relaax-zmq run ARGV``'s options, defaults filled in (for commands that run it)."""
    parser = argparse.ArgumentParser(prog=f"{PROG} run")
    add_arguments(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    try:
        roles = expand_roles(args.roles)
    except ValueError as exc:
        raise CliError(f"run: {exc}", code=2) from None
    if args.clients is not None and args.clients < 1:
        raise CliError(f"run: -n expects a number of clients >= 1, got {args.clients}", code=2)
    if args.crash_limit < 0 or args.crash_window <= 0:
        raise CliError(
            "run: expected --crash-limit >= 0 and --crash-window > 0, got "
            f"{args.crash_limit} and {args.crash_window:g}",
            code=2,
        )
    overrides = parse_set(args.set)
    config = load_app(args.config, overrides)
    if "gateway" in args.roles and not config.gateway.enabled:
        raise CliError(
            f"run gateway: {args.config} does not enable it; set gateway.enabled: true "
            "there (or --set gateway.enabled=true)",
            code=2,
        )
    folder = RunFolder.of(args.config)
    supervisor = Supervisor(folder)
    started_here = not supervisor.running()
    if started_here:
        busy = taken_endpoints(config, roles, app_shards(config))
        if busy:
            raise CliError(
                "ports in use (another app or an earlier run still up?): " + ", ".join(busy)
            )
        if args.fresh:
            set_aside(config, _notes(args))
    elif args.fresh:
        raise CliError("run --fresh: the app's daemons are running; stop them first", code=2)
    else:  # add these roles to what already runs for this app
        running = {info.group for info in supervisor.processes()}
        roles = [role for role in ROLES if role in running or role in roles]
    programs = app_programs(
        config,
        effective_app(config, folder) if overrides else folder.config_path,
        roles,
        env_args=env_overrides(args.clients, args.exploit),
        tensorboard_port=args.tensorboard_port,
    )
    supervisor.write(programs, crash_limit=args.crash_limit, crash_window=args.crash_window)
    notes = _notes(args)
    print(f"starting {', '.join(p.name for p in programs)} under supervisord ...", file=notes)
    try:
        if started_here:
            supervisor.start()
        else:
            supervisor.update()
            supervisor.start_groups(roles)
        wait_started(config, supervisor, roles, args.ready_timeout)
    except BaseException:
        if started_here:
            supervisor.shutdown()
        raise
    print(f"up: {folder.root} (relaax-zmq status -c {args.config})", file=notes, flush=True)
    if args.detach:
        return 0
    return watch(args, config, supervisor)


def effective_app(config: AppConfig, folder: RunFolder) -> Path:
    """``config`` (the app with ``--set`` applied) written to the run folder for the daemons.

    Paths in it are absolute (``dump_config``), so it loads the same from there.
    """
    path = folder.root / f"{folder.config_path.stem}.set.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {folder.config_path} with --set applied (written by {PROG} run)\n"
    path.write_text(header + dump_config(config))
    return path


def set_aside(config: AppConfig, notes: TextIO) -> None:
    """``--fresh``: the earlier run set aside (``relaax_zmq.runtime.fresh_start``)."""
    try:
        moves = set_aside_previous_run(config)
    except FreshStartError as exc:
        raise CliError(f"run --fresh: {exc}") from None
    print(set_aside_report(moves), file=notes, flush=True)


def _notes(args: argparse.Namespace) -> TextIO:
    """Where messages for the user go: stderr with ``--progress json`` (stdout is its JSON
    lines alone, as the display keeps it), stdout otherwise."""
    return sys.stderr if getattr(args, "progress", None) == "json" else sys.stdout


def wait_started(
    config: AppConfig, supervisor: Supervisor, roles: list[str], timeout: float
) -> None:
    """Until the daemons are up (module docstring); CliError naming a crashing one."""

    def check() -> None:
        processes = supervisor.processes()
        fatal = [p for p in processes if p.state == "FATAL"]
        refused = [p for p in processes if p.state == "EXITED" and p.exitstatus == EXIT_REFUSED]
        if fatal or refused:
            info = (fatal or refused)[0]
            how = "failed to start" if fatal else "was refused by its peers"
            raise CliError(
                f"{info.name} {how} ({info.description}); the end of its log "
                f"({supervisor.folder.log_of(info.name)}):\n"
                f"{supervisor.tail(info.name).rstrip()}"
            )

    def worker_pids() -> set[int]:
        return process_tree(p.pid for p in supervisor.processes() if p.group == "workers" and p.pid)

    deadline = time.monotonic() + timeout
    if "workers" in roles:
        try:
            wait_ready(config, timeout=timeout, check=check, pids=worker_pids)
        except TimeoutError as exc:
            states = ", ".join(f"{p.name} {p.state}" for p in supervisor.processes())
            raise CliError(f"{exc} ({states}); see the logs in {supervisor.folder.logs}") from None
    while time.monotonic() < deadline:
        check()
        # supervisord says RUNNING once a program has stayed up for STARTSECS
        if all(p.state in ("RUNNING", "EXITED") for p in supervisor.processes()):
            return
        time.sleep(0.2)
    states_text = ", ".join(f"{p.name} {p.state}" for p in supervisor.processes())
    raise CliError(
        f"daemons not up after {timeout:.0f} s ({states_text}); see the logs in "
        f"{supervisor.folder.logs}"
    )


def watch(args: argparse.Namespace, config: AppConfig, supervisor: Supervisor) -> int:
    """Progress until training ends, then a clean stop and where everything is."""
    stop, restore = stop_event()
    display = open_display(args.progress)
    try:
        outcome = Watch(
            config,
            supervisor,
            window=args.window,
            target_reward=args.target_reward,
            time_limit=args.time_limit,
            display=display,
        ).run(stop)
        display.close(outcome.reason)
        display.note(f"{outcome.reason}; stopping the daemons (final checkpoint) ...")
        supervisor.shutdown()
    finally:
        display.close("error")  # when an error ended the watch (else done already)
        restore()
    folder = supervisor.folder
    try:
        curves = write_curves(
            [config.metrics.logdir],
            curves_base(folder.root),
            smooth=args.window,
            title=str(folder.config_path.name),
        )
    except MissingExtra as exc:  # the run is done; only its picture is missing
        display.note(f"no learning curve: {exc}")
        curves = None
    extra: dict[str, Path] = {}
    if curves is not None:
        extra["learning_curve"] = curves[0]
    for line in locations(config, folder.logs, **extra):
        display.note(line)
    if outcome.failed:
        return 1
    if args.target_reward is not None and not outcome.reached:
        return 1
    return 0
