"""The broker-worker link: the messages a worker's DEALER and the broker's backend ROUTER exchange.

Every link message starts with a command frame (``Command``). Forwarded client
traffic is ``[REQUEST|REPLY, client_identity, *rlx_frames]``: the RLX frames
pass through untouched. Control messages are ``[command, json_body]`` with a
small UTF-8 JSON object (never pickle); ``parse_control`` checks the body
against the fields each command requires and raises ``ProtocolError`` naming
the first one that is wrong. docs/exchange.md describes the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from relaax_zmq.errors import ProtocolError

#: Version of the link conversation; a worker announces it in REGISTER. Version 2: REGISTER
#: carries the process's ``instance`` token and the broker may answer REFUSE.
LINK_VERSION = 2
#: Largest control body accepted (bytes); control bodies are tiny.
MAX_CONTROL_BYTES = 64 * 1024


class Command(bytes, Enum):
    """First frame of every link message."""

    REGISTER = b"REG"  # worker -> broker: {worker, instance, pid, capacity, link_version}
    REFUSE = b"REFUSE"  # broker -> worker: {reason} the name is held by a live worker
    HEARTBEAT = b"HB"  # both ways: {} from the broker; worker stats from a worker
    BYE = b"BYE"  # worker -> broker: {} the worker is stopping; re-home its sessions now
    ASSIGN = b"ASSIGN"  # broker -> worker: {session_id, count, exploit, restart}
    RESTART = b"RESTART"  # broker -> worker: {session_id} end the block's episodes (resume)
    RELEASE = b"RELEASE"  # broker -> worker: {session_id} forget the block
    REQUEST = b"REQ"  # broker -> worker: [REQ, client_identity, *rlx_frames]
    REPLY = b"REP"  # worker -> broker: [REP, client_identity, *rlx_frames]


#: Required body fields and their JSON types, per control command.
CONTROL_FIELDS: dict[Command, dict[str, type | tuple[type, ...]]] = {
    Command.REGISTER: {
        "worker": str,
        "instance": str,
        "pid": int,
        "capacity": int,
        "link_version": int,
    },
    Command.REFUSE: {"reason": str},
    Command.HEARTBEAT: {},
    Command.BYE: {},
    Command.ASSIGN: {"session_id": int, "count": int, "exploit": bool, "restart": bool},
    Command.RESTART: {"session_id": int},
    Command.RELEASE: {"session_id": int},
}


def control(command: Command, **body: Any) -> list[bytes]:
    """The frames of a control message (validated like the receiver will)."""
    frames = [command.value, json.dumps(body, separators=(",", ":")).encode()]
    parse_control(command, frames[1])
    return frames


def forward(command: Command, identity: bytes, frames: Sequence[Any]) -> list[Any]:
    """``[REQUEST|REPLY, identity, *frames]``: client traffic wrapped for the link."""
    return [command.value, identity, *frames]


def parse_command(frame: Any) -> Command:
    """The ``Command`` of a link message's first frame."""
    raw = bytes(frame)
    try:
        return Command(raw)
    except ValueError:
        known = ", ".join(c.value.decode() for c in Command)
        got = raw[:16].hex(" ") or "an empty frame"
        raise ProtocolError("link.command", f"one of {known}", got) from None


def parse_control(command: Command, body: Any) -> dict[str, Any]:
    """Decode and check the JSON body of a control message."""
    raw = bytes(body)
    if len(raw) > MAX_CONTROL_BYTES:
        raise ProtocolError("link.body", f"at most {MAX_CONTROL_BYTES} bytes", f"{len(raw)} bytes")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # deep nesting
        raise ProtocolError("link.body", "a UTF-8 JSON object", f"invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ProtocolError("link.body", "a JSON object", type(value).__name__)
    _check_fields(command, value, CONTROL_FIELDS[command])
    return value


def _check_fields(
    command: Command, body: Mapping[str, Any], fields: Mapping[str, type | tuple[type, ...]]
) -> None:
    for name, kind in fields.items():
        if name not in body:
            raise ProtocolError(f"link.{command.name.lower()}.{name}", "a value", "nothing")
        value = body[name]
        # bool is an int in Python; an int field must not accept true/false
        wrong_bool = kind is int and isinstance(value, bool)
        if wrong_bool or not isinstance(value, kind):
            expected = getattr(kind, "__name__", str(kind))
            raise ProtocolError(
                f"link.{command.name.lower()}.{name}", expected, type(value).__name__
            )
        if kind is int and value < 0:
            raise ProtocolError(f"link.{command.name.lower()}.{name}", "a value >= 0", value)
