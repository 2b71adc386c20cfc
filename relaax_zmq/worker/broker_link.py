"""The worker's side of the broker link as state, without sockets: register, heartbeat, fence.

``LinkClock`` keeps the link's times (docs/exchange.md, "Link" and "Worker"):
a heartbeat each ``heartbeat_interval``; a broker silent for
``heartbeat_liveness`` intervals means registering again on a fresh socket; a
worker that sent nothing for that long and a margin more knows the broker has
declared it dead and fences itself (drops what is queued for it, registers
again at once). ``LinkClock.due`` says what is due; the worker's loop does it.
``registration`` and ``read_control`` build and read the link's control
messages, ``apply_control`` applies a block command to the session host.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol.link import LINK_VERSION, Command, control, parse_control
from relaax_zmq.worker.host import SessionHost

log = logging.getLogger(__name__)

#: Longest single wait, so that a stop request is noticed quickly (seconds).
POLL_CAP = 0.1
#: Seconds of silence towards the broker, beyond its liveness timeout (and at least one
#: heartbeat interval), after which the worker knows it was declared dead and fences itself.
FENCE_MARGIN = 1.0
#: The broker -> worker commands that change the blocks a worker hosts (``apply_control``).
BLOCK_COMMANDS = frozenset((Command.ASSIGN, Command.RESTART, Command.RELEASE))


class Due(IntFlag):
    """What ``LinkClock.due`` asks the loop to do."""

    NOTHING = 0
    HEARTBEAT = 1  # send HB with the stats
    RECONNECT = 2  # the broker is silent: a fresh socket, no sessions, REG again
    FENCE = 4  # declared dead: drop what is queued unanswered, then as RECONNECT


@dataclass(slots=True)
class LinkCounters:
    """What the worker's link counts (its heartbeats carry them by name)."""

    reconnects: int = 0  # registrations again (a silent broker, a fence)
    malformed: int = 0  # requests that did not decode, answered with the decoder's text
    dropped_replies: int = 0  # messages dropped on a full send queue
    ignored: int = 0  # link messages from the broker that were not understood
    fenced: int = 0  # times the worker knew itself declared dead
    fenced_requests: int = 0  # requests those fences dropped unanswered
    refused: int = 0  # registrations the broker refused (the name held by a live worker)


class LinkClock:
    """When the worker heartbeats, re-registers and fences; times are ``time.monotonic()``.

    Args:
        interval: ``broker.heartbeat_interval`` (seconds).
        liveness: ``broker.heartbeat_liveness`` (intervals).
        now: the time of the first registration.
    """

    def __init__(self, interval: float, liveness: int, now: float) -> None:
        self.interval = interval
        #: the broker silent this long: register again
        self.silence = interval * liveness
        #: nothing sent this long: the broker has surely declared this worker dead
        self.dead = self.silence + max(interval, FENCE_MARGIN)
        self.registered(now)

    def registered(self, now: float) -> None:
        """A REG went out on a fresh socket: every clock starts again."""
        self.last_sent = now  # the last message to the broker
        self.longest_mute = 0.0  # the longest time between two of them since registering
        self.last_heard = now  # the last message from the broker
        self.next_beat = now + self.interval

    def sent(self, now: float) -> None:
        """Something went out to the broker (a sign of life)."""
        gap = now - self.last_sent
        if gap > self.longest_mute:
            self.longest_mute = gap
        self.last_sent = now

    def heard(self, now: float) -> None:
        """Something came from the broker."""
        self.last_heard = now

    def mute(self, now: float) -> float:
        """The longest time nothing went out to the broker, since the last registration."""
        return max(self.longest_mute, now - self.last_sent)

    def declared_dead(self, now: float) -> bool:
        """Mute for so long that the broker has declared this worker dead."""
        return self.mute(now) > self.dead

    def wait(self, now: float) -> float:
        """How long the loop may wait for a message now (seconds)."""
        return max(0.0, min(self.next_beat - now, POLL_CAP))

    def due(self, now: float) -> Due:
        """What is due now; a heartbeat found due is scheduled again one interval on."""
        if self.declared_dead(now):
            return Due.FENCE
        due = Due.NOTHING
        if now >= self.next_beat:
            due |= Due.HEARTBEAT
            self.next_beat = now + self.interval
        if now - self.last_heard > self.silence:
            due |= Due.RECONNECT
        return due


class WorkerRefused(RuntimeError):
    """The broker keeps refusing this worker's name: another live worker holds it."""


class Refusals:
    """The broker's REFUSEs of this worker's registrations, as a rule: the first is waited
    out (the name's holder may be this worker's own crashed predecessor, which the broker
    declares dead within its liveness timeout; the link's silence rule then registers again),
    a refusal ``patience`` seconds or more after the first means the holder is alive."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.first: float | None = None

    def refused(self, reason: str, now: float) -> None:
        """A REFUSE came; ``WorkerRefused`` when the holder has outlived ``patience``."""
        if self.first is None:
            self.first = now
            log.error(
                "the broker refused this worker: %s; registering again in %.1f s",
                reason,
                self.patience,
            )
        elif now - self.first >= self.patience:
            raise WorkerRefused(f"the broker refused this worker again: {reason}")

    def accepted(self) -> None:
        """The broker talks to this worker as a registered one: refusals are over."""
        self.first = None


def registration(name: str, instance: str, capacity: int) -> list[bytes]:
    """The REG message of worker ``name`` (process ``instance``) hosting up to ``capacity``
    sessions."""
    return control(
        Command.REGISTER,
        worker=name,
        instance=instance,
        pid=os.getpid(),
        capacity=capacity,
        link_version=LINK_VERSION,
    )


def read_control(command: Command, frames: list[Any]) -> dict[str, Any]:
    """The checked body of a block command (``BLOCK_COMMANDS``) or REFUSE; ProtocolError
    else."""
    if command not in BLOCK_COMMANDS and command is not Command.REFUSE:
        raise ProtocolError("link.command", "a broker -> worker command", command.name)
    if len(frames) != 2:
        raise ProtocolError(f"link.{command.name.lower()}", "2 frames", len(frames))
    return parse_control(command, frames[1])


def apply_control(host: SessionHost, command: Command, body: dict[str, Any]) -> None:
    """ASSIGN, RESTART or RELEASE on ``host``; a failure is logged, not raised."""
    session_id = body["session_id"]
    try:
        if command is Command.ASSIGN:
            host.assign(session_id, body["count"], exploit=body["exploit"], restart=body["restart"])
        elif command is Command.RESTART:
            if not host.restart(session_id):
                log.info("RESTART of block %d, which is not hosted here", session_id)
        elif not host.release(session_id):
            log.info("RELEASE of block %d, which is not hosted here", session_id)
    except Exception:
        log.exception("%s %s failed", command.name, body)
