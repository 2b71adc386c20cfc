"""The error reply to a message a decoder (or ``envelope.peek``) refused.

Broker and worker answer refused messages the same way: UNSUPPORTED_VERSION
with the spoken versions for a version they do not speak (docs/protocol.md,
section 4), TOO_LARGE for a configured limit, MALFORMED for the rest; the text
is the ``ProtocolError``'s, and the reply echoes the request's sequence,
session_id and session_count whenever frame 0 holds their bytes
(``header.salvage``; docs/protocol.md, sections 3.3 and 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import SUPPORTED_VERSIONS, ErrorCode
from relaax_zmq.protocol.header import salvage
from relaax_zmq.protocol.limits import Limits
from relaax_zmq.protocol.message import Message


def refusal(exc: ProtocolError, frames: Sequence[Any], limits: Limits) -> Message:
    """The error message answering ``frames``, refused with ``exc``."""
    sequence, session_id, session_count = salvage(frames, limits.max_sessions)
    versions = None
    if exc.field == "header.version":
        code = ErrorCode.UNSUPPORTED_VERSION
        versions = SUPPORTED_VERSIONS
    elif is_limit(exc, limits):
        code = ErrorCode.TOO_LARGE
    else:
        code = ErrorCode.MALFORMED
    return messages.error(
        code,
        str(exc),
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
        versions=versions,
    )


def is_limit(exc: ProtocolError, limits: Limits) -> bool:
    """Whether the message was refused for exceeding a configured limit."""
    if exc.field in ("header.tensor_count", "message") or exc.field.endswith(".elements"):
        return True
    if exc.field == "header.session_count":
        return isinstance(exc.actual, int) and exc.actual > limits.max_sessions
    return False
