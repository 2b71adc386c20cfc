"""The RLX exchange protocol, version 1 (docs/protocol.md is the contract).

``encode(message) -> frames`` and ``decode(frames) -> message`` come from the
compiled codec when it loads, else from the pure Python reference
(``RELAAX_ZMQ_BACKEND=python|cython`` forces one). ``BACKEND`` says which.
"""

from typing import Any

from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import (
    MAGIC,
    SUPPORTED_VERSIONS,
    VERSION,
    DType,
    EpisodeFlag,
    ErrorCode,
    Flag,
    MessageType,
    Role,
)
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message


def __getattr__(name: str) -> Any:
    # Lazy, so that the extension module can import this package's submodules.
    if name in ("encode", "decode", "BACKEND"):
        from relaax_zmq.protocol import codec

        return getattr(codec, name)
    raise AttributeError(f"module 'relaax_zmq.protocol' has no attribute {name!r}")


__all__ = [
    "BACKEND",
    "DEFAULT_LIMITS",
    "DType",
    "EpisodeFlag",
    "ErrorCode",
    "Flag",
    "Limits",
    "MAGIC",
    "Message",
    "MessageType",
    "Role",
    "SUPPORTED_VERSIONS",
    "VERSION",
    "decode",
    "encode",
    "messages",
]
