"""supervisord for an app: its configuration file and control over XML-RPC (unix socket).

``render_config`` writes one ``[program:NAME]`` per daemon, grouped by role
(``[group:ps]``...): autorestart on unexpected exits (a daemon that exits 0, such as
a shard at ``max_global_step`` or clients after ``max_episodes``, stays down, and so does
one its peers refused for good, ``EXIT_REFUSED``: a worker whose name is taken) within a
restart budget (``crashguard``: a daemon that keeps crashing ends FATAL), SIGTERM with
a per-role grace (``programs.ROLES``), the whole process group signalled, one log per
program in the run folder. ``Supervisor`` starts supervisord on that file
and drives it: states, starting and stopping (in the safe order), reloading, shutdown.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from relaax_zmq.cli.common import CliError
from relaax_zmq.cli.crashguard import CRASH_LIMIT, CRASH_WINDOW, clear_history
from relaax_zmq.cli.programs import ROLES, Program, program_environment
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.runtime.daemon import EXIT_REFUSED

#: A daemon that dies within this many seconds of a start has failed to start (a daemon
#: imports torch and reads its config first: a few seconds on a busy machine).
STARTSECS = 5
#: Starts tried before a daemon is FATAL (each after a longer back-off: 1 s, 2 s, ...).
STARTRETRIES = 2
#: supervisord's fault codes (supervisor.xmlrpc.Faults) this module handles.
BAD_NAME, NOT_RUNNING, ALREADY_STARTED = 10, 70, 60
#: Process states that mean "not running and not coming back by itself".
DOWN = ("STOPPED", "EXITED", "FATAL", "UNKNOWN")


def _value(text: str) -> str:
    """A value for supervisord's ini file (``%`` is its expansion character)."""
    return text.replace("%", "%%")


def _environment(variables: dict[str, str]) -> str:
    return ",".join(f'{k}="{_value(v)}"' for k, v in sorted(variables.items()))


def guarded(
    folder: RunFolder, program: Program, crash_limit: int, crash_window: float
) -> list[str]:
    """``program``'s command behind its restart budget (``crashguard``)."""
    history = str(folder.starts_of(program.name))
    guard = [sys.executable, "-m", "relaax_zmq.cli.crashguard", "--name", program.name]
    guard += ["--history", history, "--limit", str(crash_limit), "--window", f"{crash_window:g}"]
    return [*guard, "--", *program.command]


def render_config(
    folder: RunFolder,
    programs: Sequence[Program],
    *,
    crash_limit: int = CRASH_LIMIT,
    crash_window: float = CRASH_WINDOW,
) -> str:
    """The supervisord configuration of ``programs`` in ``folder`` (see the module docstring).

    A program restarted by supervisord more than ``crash_limit`` times in ``crash_window``
    seconds is not started again (FATAL).
    """
    app_dir = _value(str(folder.config_path.parent))
    lines = [
        f"; written by relaax-zmq run for {folder.config_path}; rewritten on every run",
        "[unix_http_server]",
        f"file={_value(str(folder.socket))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_value(str(folder.supervisord_log))}",
        f"pidfile={_value(str(folder.pidfile))}",
        f"childlogdir={_value(str(folder.logs))}",
        f"directory={app_dir}",
        f"identifier=relaax-zmq:{_value(str(folder.config_path))}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_value(str(folder.socket))}",
    ]
    environment = _environment(program_environment())
    for program in programs:
        log = _value(str(folder.log_of(program.name)))
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={_value(shlex.join(guarded(folder, program, crash_limit, crash_window)))}",
            f"directory={app_dir}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=unexpected",
            f"exitcodes=0,{EXIT_REFUSED}",
            f"startsecs={STARTSECS}",
            f"startretries={STARTRETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
            f"environment={environment}",
        ]
    for role in ROLES:
        members = [p.name for p in programs if p.role == role]
        if members:
            lines += ["", f"[group:{role}]", f"programs={','.join(members)}"]
            lines.append(f"priority={ROLES[role][0]}")
    return "\n".join(lines) + "\n"


@dataclass
class ProcessInfo:
    """What supervisord says of one program."""

    name: str
    group: str
    state: str
    pid: int
    start: int
    exitstatus: int
    description: str
    spawnerr: str

    @property
    def namespec(self) -> str:
        return f"{self.group}:{self.name}"

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProcessInfo:
        return cls(
            name=info["name"],
            group=info["group"],
            state=info["statename"],
            pid=int(info["pid"]),
            start=int(info["start"]),
            exitstatus=int(info["exitstatus"]),
            description=info["description"],
            spawnerr=info.get("spawnerr", ""),
        )


class Supervisor:
    """The supervisord of one run folder."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        transport = SupervisorTransport(serverurl=f"unix://{folder.socket}")
        self.proxy: Any = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    # -- state --------------------------------------------------------------------------------

    def running(self) -> bool:
        """True when this folder's supervisord answers."""
        if not self.folder.socket.exists():
            return False
        try:
            return self.proxy.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def processes(self) -> list[ProcessInfo]:
        """Every program, in supervisord's order."""
        return [ProcessInfo.from_rpc(i) for i in self._call("getAllProcessInfo")]

    def programs(self) -> dict[str, ProcessInfo]:
        """Every program by name."""
        return {p.name: p for p in self.processes()}

    # -- lifecycle ----------------------------------------------------------------------------

    def write(
        self,
        programs: Sequence[Program],
        *,
        crash_limit: int = CRASH_LIMIT,
        crash_window: float = CRASH_WINDOW,
    ) -> None:
        """Write the configuration of ``programs`` into the run folder."""
        self.folder.create()
        text = render_config(
            self.folder, programs, crash_limit=crash_limit, crash_window=crash_window
        )
        self.folder.supervisord_conf.write_text(text)

    def start(self, timeout: float = 15.0) -> None:
        """Start supervisord on the written configuration; CliError if it does not come up."""
        self._forget_histories(keep=())  # a fresh restart budget for every program
        command = [sys.executable, "-m", "supervisor.supervisord"]
        command += ["-c", str(self.folder.supervisord_conf)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise CliError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        raise CliError(f"supervisord did not answer in {timeout:.0f} s:\n{self.supervisord_tail()}")

    def update(self) -> list[str]:
        """Re-read the written configuration; start added programs, restart changed ones."""
        added, changed, removed = self._call("reloadConfig")[0]
        for group in removed + changed:
            self.stop_groups([group])
            self._call("removeProcessGroup", group)
        self._forget_histories(keep={info.name for info in self.processes()})
        for group in changed + added:
            self._call("addProcessGroup", group)  # starts them: a fresh restart budget
        return sorted(added + changed)

    def start_groups(self, groups: Iterable[str]) -> None:
        """Start every stopped program of ``groups`` (in the order given)."""
        for group in groups:
            self.clear_histories(f"{group}:*", only=DOWN)  # not the running ones' budgets
            try:
                self._call("startProcessGroup", group, False)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in (BAD_NAME, ALREADY_STARTED):
                    raise

    def stop_groups(self, groups: Iterable[str]) -> None:
        """Stop the groups one after the other, each waiting for its programs to exit."""
        for group in groups:
            try:
                self._call("stopProcessGroup", group, True)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in (BAD_NAME, NOT_RUNNING):
                    raise

    def stop_all(self) -> None:
        """Stop every program in the safe order: the reverse of the start order."""
        self.stop_groups(reversed(list(ROLES)))

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every program (safe order), then supervisord itself."""
        self.stop_all()
        pid = self._pid()
        try:
            self._call("shutdown")
        except (OSError, xmlrpc.client.Error):
            pass  # it went down while answering
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid is not None and _alive(pid):
            time.sleep(0.1)

    def stop_process(self, namespec: str) -> None:
        """Stop one program (``group:name``), waiting for it to exit."""
        try:
            self._call("stopProcess", namespec, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != NOT_RUNNING:
                raise CliError(f"stop {namespec}: {fault.faultString}") from None

    def restart(self, namespec: str) -> None:
        """Stop (waiting) and start one program or group (``group:*``): a fresh restart budget."""
        self.clear_histories(namespec)
        for method in ("stopProcess", "startProcess"):
            try:
                self._call(method, namespec, True)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in (NOT_RUNNING, ALREADY_STARTED):
                    raise CliError(f"{method} {namespec}: {fault.faultString}") from None

    def clear_histories(self, namespec: str, only: Sequence[str] | None = None) -> None:
        """Give the programs ``namespec`` names (``group:name``, ``group:*``) a fresh restart
        budget: those about to be started on purpose (``only``: those in these states)."""
        group, _, name = namespec.partition(":")
        for info in self.processes():
            wanted = only is None or info.state in only
            if info.group == group and name in ("*", info.name) and wanted:
                clear_history(self.folder.starts_of(info.name))

    def _forget_histories(self, keep: Iterable[str]) -> None:
        """Clear the restart budgets of every program but those named in ``keep``."""
        pattern = self.folder.starts_of("*")
        kept = {self.folder.starts_of(name) for name in keep}
        for history in pattern.parent.glob(pattern.name):
            if history not in kept:
                clear_history(history)

    # -- logs ---------------------------------------------------------------------------------

    def tail(self, program: str, chars: int = 3000) -> str:
        """The end of a program's log."""
        path = self.folder.log_of(program)
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - chars))
            return f.read().decode(errors="replace")

    def last_line(self, program: str) -> str:
        """The last non-empty line of a program's log ("" when there is none)."""
        lines = self.tail(program, 2000).strip().splitlines()
        return lines[-1].strip() if lines else ""

    def supervisord_tail(self, chars: int = 2000) -> str:
        path = self.folder.supervisord_log
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- internals ----------------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.proxy.supervisor, method)(*args)
        except OSError as exc:
            raise CliError(
                f"supervisord of {self.folder.config_path} does not answer ({exc}); "
                "is the app running? (relaax-zmq run)"
            ) from None

    def _pid(self) -> int | None:
        try:
            return int(self._call("getPID"))
        except (CliError, xmlrpc.client.Error):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
