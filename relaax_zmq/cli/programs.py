"""The supervisord programs of an app, by role: which daemons ``run ROLE`` starts.

Roles, in start order (supervisord priority): ``metrics`` (the collector), ``ps`` (the
parameter-server shards), ``replay`` and ``learner`` (the replay servers and learners of an
algorithm with a central learner: apex; impala, appo), ``broker``, ``workers``, ``gateway``
(the WebSocket gateway, when ``gateway.enabled``), ``envs`` (the environment clients),
``tensorboard``. ``servers`` is all but the last two, ``all`` adds ``envs``. Daemons stop
in the reverse order, which loses nothing: clients, the gateway (its connections' blocks
closed), workers (BYE), the broker, learners, the shards (a final checkpoint), the
collector (a final flush).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relaax_zmq.config import AppConfig
from relaax_zmq.runtime.local import DAEMON_ENV, app_daemons

#: Every role in start order, with its supervisord priority and stop grace (seconds).
ROLES: dict[str, tuple[int, int]] = {
    "metrics": (100, 15),
    "ps": (200, 60),  # a final checkpoint on SIGTERM
    "replay": (220, 10),
    "learner": (250, 10),
    "broker": (300, 10),
    "workers": (400, 15),
    "gateway": (450, 10),
    "envs": (500, 15),
    "tensorboard": (600, 5),
}
ALIASES = {
    "servers": ("metrics", "ps", "replay", "learner", "broker", "workers", "gateway"),
    "all": ("metrics", "ps", "replay", "learner", "broker", "workers", "gateway", "envs"),
}
CHOICES = (*ALIASES, *ROLES)
TENSORBOARD_PORT = 6006


@dataclass(frozen=True)
class Program:
    """One supervisord program: a daemon of the app."""

    name: str
    role: str
    command: tuple[str, ...]

    @property
    def priority(self) -> int:
        return ROLES[self.role][0]

    @property
    def stopwaitsecs(self) -> int:
        return ROLES[self.role][1]

    @property
    def namespec(self) -> str:
        """supervisord's ``group:name``."""
        return f"{self.role}:{self.name}"


def expand_roles(selection: Iterable[str]) -> list[str]:
    """The roles a selection names (``all``, ``servers``, single roles), in start order."""
    wanted: set[str] = set()
    for item in selection:
        if item in ALIASES:
            wanted.update(ALIASES[item])
        elif item in ROLES:
            wanted.add(item)
        else:
            raise ValueError(f"expected one of {', '.join(CHOICES)}, got {item!r}")
    return [role for role in ROLES if role in wanted]


def env_overrides(clients: int | None, exploit: bool) -> list[str]:
    """``--set`` arguments of the environment clients for ``-n`` and ``--exploit``."""
    found = []
    if clients is not None:
        found.append(f"environment.clients={clients}")
    if exploit:
        found.append("environment.exploit=true")
    return [arg for item in found for arg in ("--set", item)]


def app_programs(
    config: AppConfig,
    config_path: Path,
    roles: Sequence[str],
    *,
    env_args: Sequence[str] = (),
    tensorboard_port: int = TENSORBOARD_PORT,
) -> list[Program]:
    """The programs of ``roles`` (already expanded) for the app at ``config_path``."""
    programs = [
        Program(spec.name, spec.role, tuple(spec.command(config_path)))
        for spec in app_daemons(config)
        if spec.role in roles
    ]
    if "envs" in roles:
        command = [sys.executable, "-m", "relaax_zmq.envs", "--config", str(config_path)]
        programs.append(Program("envs", "envs", (*command, *env_args)))
    if "tensorboard" in roles:
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(config.metrics.logdir)]
        command += ["--host", "127.0.0.1", "--port", str(tensorboard_port)]
        programs.append(Program("tensorboard", "tensorboard", tuple(command)))
    return programs


def program_environment() -> dict[str, str]:
    """Variables every program gets on top of supervisord's own environment."""
    return dict(DAEMON_ENV)
