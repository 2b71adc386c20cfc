"""The admin endpoint's JSON commands: status, drain and drop (docs/exchange.md, "Admin").

A request is one frame holding a JSON object; the reply is one frame holding a
JSON object with ``"ok"`` (and ``"error"`` when false). Nothing a peer sends
makes ``handle`` raise: bad JSON, unknown commands and unknown names are answered.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Largest admin request accepted (bytes); commands are tiny.
MAX_REQUEST_BYTES = 64 * 1024


class AdminTarget(Protocol):
    """What the admin commands act on (the broker)."""

    def status(self) -> dict[str, Any]: ...

    def drain(self, worker: str) -> str | None:
        """Start draining ``worker``; None, or the reason it cannot."""
        ...

    def drop(self, session: int) -> str | None:
        """Release the block that contains ``session``; None, or the reason it cannot."""
        ...


def handle(raw: bytes, target: AdminTarget) -> bytes:
    """The reply frame for the request frame ``raw``."""
    try:
        reply = _dispatch(raw, target)
    except Exception as exc:  # a broker bug must not kill the admin endpoint
        log.exception("admin command failed")
        reply = _fail(f"internal error: {type(exc).__name__}: {exc}")
    return json.dumps(reply, separators=(",", ":"), default=str).encode()


def _dispatch(raw: bytes, target: AdminTarget) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        return _fail(f"request too large: {len(raw)} bytes, at most {MAX_REQUEST_BYTES}")
    try:
        request = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # deep nesting
        return _fail(f"expected a UTF-8 JSON object: {exc}")
    if not isinstance(request, dict):
        return _fail(f"expected a JSON object, got {type(request).__name__}")
    command = request.get("command")
    if command == "status":
        return {"ok": True, "status": target.status()}
    if command == "drain":
        worker = request.get("worker")
        if not isinstance(worker, str):
            return _fail("drain: expected 'worker': a worker name")
        return _result(target.drain(worker))
    if command == "drop":
        session = request.get("session")
        if not isinstance(session, int) or isinstance(session, bool) or session <= 0:
            return _fail("drop: expected 'session': a session id (an int > 0)")
        return _result(target.drop(session))
    return _fail(f"unknown command {command!r}; expected status, drain or drop")


def _result(error: str | None) -> dict[str, Any]:
    return {"ok": True} if error is None else _fail(error)


def _fail(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}
