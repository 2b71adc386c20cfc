"""``relaax-zmq status``: every daemon's supervisord state and the broker's live figures.

Daemons: name, state (RUNNING, BACKOFF, FATAL...), pid and uptime or exit status;
for a FATAL or BACKOFF one also the last line of its log (why it failed, or why its
restart budget refused it: ``crashguard``).
Broker (its admin endpoint, ``relaax_zmq.runtime.admin_client``): workers alive and their
sessions, steps per second, environment steps served and shard 0's global step.
Exit status 0 when supervisord runs and no daemon is FATAL or BACKOFF, else 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from relaax_zmq.cli.common import add_app_option, add_json_option, load_app, print_json
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import Supervisor
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.watching import reported_global_step, served_steps

HELP = "show the daemons' states and the broker's live figures"
BAD = ("FATAL", "BACKOFF")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(parser)
    add_json_option(parser)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """The status object (what ``--json`` prints)."""
    config = load_app(args.config)
    supervisor = Supervisor(RunFolder.of(args.config))
    found: dict[str, Any] = {"app": str(args.config), "supervisord": supervisor.running()}
    found["daemons"] = []
    for p in supervisor.processes() if found["supervisord"] else []:
        daemon = {
            "name": p.name,
            "group": p.group,
            "state": p.state,
            "pid": p.pid,
            "description": p.description,
            "exitstatus": p.exitstatus,
        }
        if p.state in BAD:
            daemon["last_log_line"] = supervisor.last_line(p.name)
        found["daemons"].append(daemon)
    try:
        status = app_broker_status(config, timeout=1.0)
    except Exception as exc:
        found["broker"] = {"reachable": False, "error": str(exc)}
    else:
        workers = status["workers"]
        found["broker"] = {
            "reachable": True,
            "uptime_s": status["uptime_s"],
            "workers_alive": sum(1 for w in workers if w["alive"]),
            "workers": [
                {k: w[k] for k in ("name", "instance", "alive", "sessions", "capacity", "draining")}
                for w in workers
            ],
            "sessions": status["sessions"]["sessions"],
            "steps_per_s": status["rates"]["steps_per_s"],
            "steps": served_steps(workers),
            "global_step": reported_global_step(workers),
            "prometheus": status.get("endpoints", {}).get("prometheus"),  # its /metrics URL
            **{
                name: status["counters"].get(name, 0)
                for name in ("refused_inits", "refused_workers", "rehomed_blocks", "lost_blocks")
            },
        }
    return found


def render(found: dict[str, Any]) -> str:
    lines = [f"app: {found['app']}"]
    if not found["supervisord"]:
        lines.append("supervisord: not running (relaax-zmq run)")
    for d in found["daemons"]:
        lines.append(f"  {d['group'] + ':' + d['name']:<24} {d['state']:<9} {d['description']}")
        if d.get("last_log_line"):
            lines.append(f"    last log line: {d['last_log_line']}")
    broker = found["broker"]
    if broker["reachable"]:
        lines.append(
            f"broker: up {broker['uptime_s']:.0f} s, {broker['workers_alive']} workers alive, "
            f"{broker['sessions']} sessions, {broker['steps_per_s']:,.0f} steps/s, "
            f"steps {broker['steps']:,}, global step {broker['global_step']:,}"
        )
        for w in broker["workers"]:
            state = "alive" if w["alive"] else "dead"
            lines.append(f"  worker {w['name']}: {state}, {w['sessions']}/{w['capacity']} sessions")
    else:
        lines.append(f"broker: not reachable ({broker['error']})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    found = collect(args)
    if args.json:
        print_json(found)
    else:
        print(render(found))
    healthy = found["supervisord"] and not any(d["state"] in BAD for d in found["daemons"])
    return 0 if healthy else 1
