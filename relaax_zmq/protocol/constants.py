"""RLX protocol version 1: every constant of the wire format, in one place.

docs/protocol.md is the normative text; this module mirrors its tables.
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag

import numpy as np

MAGIC = b"RLXP"
VERSION = 1
SUPPORTED_VERSIONS = (1,)

#: frame 0; its layout (``header.LAYOUT``) is in header.py
HEADER_SIZE = 32

DESCRIPTOR_SIZE = 40
#: role, dtype, ndim, reserved, shape[8]
DESCRIPTOR = struct.Struct("<HBBI8I")
MAX_NDIM = 8


class MessageType(IntEnum):
    """Header ``type`` byte."""

    INIT = 1
    READY = 2
    UPDATE = 3
    ACTION = 4
    RESET = 5
    DONE = 6
    METRICS = 7
    CLOSE = 8
    HEARTBEAT = 9
    ERROR = 10


class Flag(IntFlag):
    """Header ``flags`` bits."""

    EXPLOIT = 0x1
    TERMINAL = 0x2
    TRUNCATED = 0x4
    RESTART = 0x8


KNOWN_FLAGS = int(Flag.EXPLOIT | Flag.TERMINAL | Flag.TRUNCATED | Flag.RESTART)


class EpisodeFlag(IntFlag):
    """Bits of each element of an ``episode_flags`` tensor."""

    TERMINAL = 0x1
    TRUNCATED = 0x2


KNOWN_EPISODE_FLAGS = int(EpisodeFlag.TERMINAL | EpisodeFlag.TRUNCATED)


class DType(IntEnum):
    """Descriptor ``dtype`` byte; every multi-byte type is little-endian."""

    BOOL = 1
    UINT8 = 2
    INT8 = 3
    UINT16 = 4
    INT16 = 5
    UINT32 = 6
    INT32 = 7
    UINT64 = 8
    INT64 = 9
    FLOAT16 = 10
    FLOAT32 = 11
    FLOAT64 = 12


#: wire dtype code -> numpy dtype (little-endian)
NUMPY_DTYPES: dict[int, np.dtype] = {
    DType.BOOL: np.dtype("?"),
    DType.UINT8: np.dtype("u1"),
    DType.INT8: np.dtype("i1"),
    DType.UINT16: np.dtype("<u2"),
    DType.INT16: np.dtype("<i2"),
    DType.UINT32: np.dtype("<u4"),
    DType.INT32: np.dtype("<i4"),
    DType.UINT64: np.dtype("<u8"),
    DType.INT64: np.dtype("<i8"),
    DType.FLOAT16: np.dtype("<f2"),
    DType.FLOAT32: np.dtype("<f4"),
    DType.FLOAT64: np.dtype("<f8"),
}

#: (numpy kind, itemsize) -> wire dtype code; byte order is handled separately
DTYPE_CODES: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in NUMPY_DTYPES.items()
}


class Role(IntEnum):
    """Descriptor ``role``: what a tensor means inside its message."""

    REWARD = 1
    STATE = 2
    EPISODE_FLAGS = 3
    ACTION = 4
    METRIC_NAMES = 5
    METRIC_VALUES = 6
    HISTOGRAM_NAMES = 7
    HISTOGRAM_LENGTHS = 8
    HISTOGRAM_VALUES = 9
    ERROR_CODE = 10
    TEXT = 11
    VERSIONS = 12


class ErrorCode(IntEnum):
    """Value of the ``error_code`` tensor of an ERROR message."""

    MALFORMED = 1
    UNSUPPORTED_VERSION = 2
    UNKNOWN_TYPE = 3
    TOO_LARGE = 4
    UNKNOWN_SESSION = 5
    BUSY = 6
    AUTH = 7
    INTERNAL = 8
    SHUTTING_DOWN = 9


def role_name(role: int) -> str:
    """The spec's name of a role (``state``), or ``role 99`` for an unknown one."""
    try:
        return Role(role).name.lower()
    except ValueError:
        return f"role {role}"


def type_name(message_type: int) -> str:
    """The spec's name of a message type (``update``), or ``type 99``."""
    try:
        return MessageType(message_type).name.lower()
    except ValueError:
        return f"type {message_type}"
