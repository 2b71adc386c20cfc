"""The RLX exchange protocol, version 1 (docs/protocol.md is the contract).

``encode(message) -> frames`` and ``decode(frames) -> message`` come from the
compiled codec when it loads, else from the pure Python reference
(``RELAAX_ZMQ_BACKEND=python|cython`` forces one). ``BACKEND`` says which.
"""

from relaax_zmq.backend import backend_name, load
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

_codec = load("relaax_zmq._codec", "relaax_zmq.protocol.reference")
encode = _codec.encode
decode = _codec.decode
BACKEND = backend_name(_codec)

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
