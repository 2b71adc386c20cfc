"""The invalid RLX test vectors: frames every decoder must refuse, and the error code
a server answers each with (docs/protocol.md, sections 3.4 and 5). Used by
scripts/make_protocol_vectors.py.
"""

from __future__ import annotations

import struct

from relaax_zmq.protocol.constants import DType, ErrorCode, Flag, MessageType, Role
from relaax_zmq.protocol.limits import DEFAULT_LIMITS


def _header(message_type: int = MessageType.UPDATE, **fields: int) -> bytes:
    values = dict(
        magic=b"RLXP",
        version=1,
        type=message_type,
        flags=0,
        sequence=0,
        session_id=1,
        session_count=1,
        tensor_count=0,
        reserved=0,
    )
    values.update(fields)
    return struct.pack("<4sBBHQQIHH", *values.values())


def _descriptor(
    role: int, dtype: int, shape: tuple[int, ...], reserved: int = 0, ndim: int | None = None
) -> bytes:
    dims = list(shape) + [0] * (8 - len(shape))
    return struct.pack(
        "<HBBI8I", role, dtype, len(shape) if ndim is None else ndim, reserved, *dims
    )


def invalid_cases() -> list[tuple[str, str, str, list[bytes]]]:
    one = _header(tensor_count=1)
    reward = _descriptor(Role.REWARD, DType.FLOAT32, (1,))
    ok_payload = b"\x00\x00\x80\x3f"
    return [
        ("no_frames", "no frame at all", "frames", []),
        ("header_short", "a 31-byte header", "header", [_header()[:31]]),
        ("header_long", "a 33-byte header", "header", [_header() + b"\x00"]),
        ("bad_magic", "magic RLXQ", "header.magic", [b"RLXQ" + _header()[4:]]),
        ("version_2", "protocol version 2", "header.version", [_header(version=2)]),
        ("version_0", "protocol version 0", "header.version", [_header(version=0)]),
        ("type_0", "message type 0", "header.type", [_header(0)]),
        ("type_11", "message type 11", "header.type", [_header(11)]),
        ("unknown_flag", "flag bit 0x10", "header.flags", [_header(flags=0x10)]),
        (
            "flag_not_for_type",
            "exploit flag on an update",
            "header.flags",
            [_header(flags=Flag.EXPLOIT)],
        ),
        (
            "header_reserved",
            "reserved header bytes not zero",
            "header.reserved",
            [_header(reserved=1)],
        ),
        (
            "no_sessions",
            "an update for 0 sessions",
            "header.session_count",
            [_header(session_count=0)],
        ),
        (
            "metrics_no_sessions",
            "metrics for 0 sessions (metrics belong to a block: N >= 1)",
            "header.session_count",
            [_header(MessageType.METRICS, session_count=0, session_id=0)],
        ),
        (
            "too_many_sessions",
            "4097 sessions, above the default limit",
            "header.session_count",
            [_header(MessageType.INIT, session_count=4097)],
        ),
        (
            "too_many_tensors",
            "65 tensors, above the default limit",
            "header.tensor_count",
            [_header(tensor_count=65)],
        ),
        ("missing_frames", "1 tensor announced, no table or payload", "frames", [one]),
        (
            "extra_frame",
            "a message without tensors followed by a frame",
            "frames",
            [_header(), b""],
        ),
        (
            "table_size",
            "a descriptor table of 39 bytes",
            "descriptors",
            [one, reward[:39], ok_payload],
        ),
        (
            "unknown_role",
            "role 99",
            "tensor[0].role",
            [one, _descriptor(99, DType.FLOAT32, (1,)), ok_payload],
        ),
        (
            "role_not_for_type",
            "an action tensor in an update",
            "tensor[0].role",
            [one, _descriptor(Role.ACTION, DType.FLOAT32, (1,)), ok_payload],
        ),
        (
            "duplicate_role",
            "two reward tensors",
            "tensor[1].role",
            [_header(tensor_count=2), reward + reward, ok_payload, ok_payload],
        ),
        (
            "unknown_dtype",
            "dtype code 13",
            "tensor[0].dtype",
            [one, _descriptor(Role.REWARD, 13, (1,)), ok_payload],
        ),
        (
            "dtype_not_for_role",
            "an int32 reward",
            "tensor[0].dtype",
            [one, _descriptor(Role.REWARD, DType.INT32, (1,)), ok_payload],
        ),
        (
            "ndim_9",
            "9 dimensions",
            "tensor[0].ndim",
            [one, _descriptor(Role.STATE, DType.FLOAT32, (1,) * 8, ndim=9), ok_payload],
        ),
        (
            "descriptor_reserved",
            "reserved descriptor bytes not zero",
            "tensor[0].reserved",
            [one, _descriptor(Role.REWARD, DType.FLOAT32, (1,), reserved=7), ok_payload],
        ),
        (
            "unused_dim",
            "a dimension set beyond ndim",
            "tensor[0].shape",
            [
                one,
                _descriptor(Role.REWARD, DType.FLOAT32, (1,))[:12]
                + struct.pack("<I", 5)
                + b"\x00" * 24,
                ok_payload,
            ],
        ),
        (
            "too_many_elements",
            "2**31 x 2**31 elements",
            "tensor[0].elements",
            [one, _descriptor(Role.STATE, DType.UINT8, (1, 2**31, 2**31)), b""],
        ),
        (
            "empty_tensor_huge_dims",
            "an empty state whose other dimensions multiply to 2**62 (found by fuzzing)",
            "tensor[0].elements",
            [one, _descriptor(Role.STATE, DType.FLOAT32, (1, 2**31, 2**31, 0)), b""],
        ),
        (
            "shape_not_sessions",
            "a reward of 2 for 1 session",
            "tensor[0].shape",
            [one, _descriptor(Role.REWARD, DType.FLOAT32, (2,)), ok_payload * 2],
        ),
        (
            "payload_short",
            "payload of 3 bytes for one float32",
            "tensor[0].payload",
            [one, reward, ok_payload[:3]],
        ),
        (
            "payload_long",
            "payload of 8 bytes for one float32",
            "tensor[0].payload",
            [one, reward, ok_payload * 2],
        ),
        (
            "action_missing",
            "an action message without an action tensor",
            "tensors",
            [_header(MessageType.ACTION)],
        ),
        (
            "episode_flags_and_header",
            "terminal in the header beside an episode_flags tensor",
            "header.flags",
            [
                _header(flags=Flag.TERMINAL, tensor_count=1),
                _descriptor(Role.EPISODE_FLAGS, DType.UINT8, (1,)),
                b"\x01",
            ],
        ),
        (
            "episode_flags_bits",
            "episode_flags value 4",
            "episode_flags",
            [one, _descriptor(Role.EPISODE_FLAGS, DType.UINT8, (1,)), b"\x04"],
        ),
    ]


def error_code(field: str, frames: list[bytes]) -> int:
    """The code a server answers a refusal naming ``field`` with (docs/protocol.md, 5.1)."""
    if field == "header.version":
        return ErrorCode.UNSUPPORTED_VERSION
    if field == "header.tensor_count" or field.endswith(".elements"):
        return ErrorCode.TOO_LARGE
    if field == "header.session_count":
        count = struct.unpack_from("<I", frames[0], 24)[0]
        return ErrorCode.TOO_LARGE if count > DEFAULT_LIMITS.max_sessions else ErrorCode.MALFORMED
    return ErrorCode.MALFORMED
