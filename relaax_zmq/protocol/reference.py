"""Reference RLX codec in pure Python (struct + numpy).

Same API and the same checks, in the same order, as the Cython codec
(``relaax_zmq._codec``); the test suite runs both against each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import header
from relaax_zmq.protocol.constants import (
    DESCRIPTOR,
    DESCRIPTOR_SIZE,
    DTYPE_CODES,
    KNOWN_EPISODE_FLAGS,
    MAX_NDIM,
    NUMPY_DTYPES,
    Flag,
    Role,
    role_name,
)
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.schema import ROLE_RULES, TYPE_RULES, Shape

Frame = Any  # bytes, memoryview, zmq.Frame or any object with the buffer protocol
BROADCAST_EPISODE_FLAGS = int(Flag.TERMINAL | Flag.TRUNCATED)


def encode(message: Message, limits: Limits = DEFAULT_LIMITS) -> list[Frame]:
    """Encode ``message`` into ZeroMQ frames: header, descriptor table, payloads.

    Payload frames are the tensors' own buffers (no copy) unless a tensor is not
    C-contiguous or not little-endian, in which case it is converted once.
    """
    tensors = {
        role: _as_wire_array(role, message.tensors[role]) for role in sorted(message.tensors)
    }
    n = message.session_count
    head = header.Header(
        message.version,
        message.type,
        message.flags,
        message.sequence,
        message.session_id,
        n,
        len(tensors),
    )
    rule = header.check(head, limits)
    frame0 = header.pack(head)
    table = bytearray(DESCRIPTOR_SIZE * len(tensors))
    for i, (role, arr) in enumerate(tensors.items()):
        if arr.ndim > MAX_NDIM:
            raise ProtocolError(f"tensor[{i}].ndim", f"at most {MAX_NDIM}", arr.ndim)
        if any(dim > 0xFFFFFFFF for dim in arr.shape):
            raise ProtocolError(f"tensor[{i}].shape", f"dimensions below {1 << 32}", arr.shape)
        code = DTYPE_CODES[(arr.dtype.kind, arr.dtype.itemsize)]
        shape = arr.shape + (0,) * (MAX_NDIM - arr.ndim)
        _check_tensor(i, role, code, arr.ndim, shape, rule, n, limits, ())
        DESCRIPTOR.pack_into(table, i * DESCRIPTOR_SIZE, role, code, arr.ndim, 0, *shape)
    _check_required(rule, tensors)
    _check_episode_flags(message.flags, tensors)
    return [frame0, bytes(table), *tensors.values()] if tensors else [frame0]


def decode(frames: Sequence[Frame], limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode ZeroMQ frames into a ``Message`` whose tensors are read-only views.

    Raises:
        ProtocolError: naming the first field that breaks the protocol.
    """
    head = header.read(frames, limits)
    version, mtype, flags, seq, sid, n, count, _, _ = head
    rule = TYPE_RULES[mtype]
    tensors: dict[int, np.ndarray] = {}
    if count:
        table = header.buffer(1, frames[1])
        if table.nbytes != DESCRIPTOR_SIZE * count:
            raise ProtocolError(
                "descriptors", f"{DESCRIPTOR_SIZE * count} bytes", f"{table.nbytes} bytes"
            )
        for i in range(count):
            role, code, ndim, reserved_d, *shape = DESCRIPTOR.unpack_from(
                table, i * DESCRIPTOR_SIZE
            )
            if reserved_d:
                raise ProtocolError(f"tensor[{i}].reserved", 0, reserved_d)
            elements = _check_tensor(i, role, code, ndim, shape, rule, n, limits, tensors)
            tensors[role] = _view(i, frames[2 + i], NUMPY_DTYPES[code], shape[:ndim], elements)
    _check_required(rule, tensors)
    _check_episode_flags(flags, tensors)
    return Message(
        mtype,
        flags=flags,
        sequence=seq,
        session_id=sid,
        session_count=n,
        tensors=tensors,
        version=version,
    )


def _check_tensor(i, role, code, ndim, shape, rule, n, limits, seen) -> int:  # noqa: ANN001
    """Validate one descriptor; return its element count."""
    field = f"tensor[{i}]"
    if role not in ROLE_RULES:
        raise ProtocolError(f"{field}.role", "a role 1..12", role)
    if role not in rule.roles:
        allowed = ", ".join(sorted(role_name(r) for r in rule.roles)) or "none"
        raise ProtocolError(f"{field}.role", f"one of: {allowed}", role_name(role))
    if role in seen:
        raise ProtocolError(f"{field}.role", "each role at most once", f"{role_name(role)} again")
    role_rule = ROLE_RULES[role]
    if code not in NUMPY_DTYPES:
        raise ProtocolError(f"{field}.dtype", "a dtype code 1..12", code)
    if code not in role_rule.dtypes:
        allowed = ", ".join(str(NUMPY_DTYPES[c]) for c in sorted(role_rule.dtypes))
        raise ProtocolError(
            f"{field}.dtype", f"one of {allowed} for {role_name(role)}", str(NUMPY_DTYPES[code])
        )
    if ndim > MAX_NDIM:
        raise ProtocolError(f"{field}.ndim", f"at most {MAX_NDIM}", ndim)
    if any(shape[ndim:]):
        raise ProtocolError(f"{field}.shape", "unused dimensions 0", list(shape))
    dims = shape[:ndim]
    elements = math.prod(dims)
    if elements > limits.max_elements:
        raise ProtocolError(f"{field}.elements", f"at most {limits.max_elements}", elements)
    span = math.prod(d for d in dims if d)  # an empty tensor's other dimensions are bounded too
    if span > limits.max_elements:
        raise ProtocolError(
            f"{field}.elements",
            f"non-zero dimensions whose product is at most {limits.max_elements}",
            span,
        )
    _check_shape(field, role_rule.shape, tuple(shape[:ndim]), n)
    return elements


def _check_shape(field: str, shape_rule: Shape, shape: tuple[int, ...], n: int) -> None:
    if shape_rule is Shape.SESSION_VECTOR:
        ok, want = shape == (n,), f"({n},)"
    elif shape_rule is Shape.PER_SESSION:
        ok, want = len(shape) >= 1 and shape[0] == n, f"({n}, ...)"
    elif shape_rule is Shape.VECTOR:
        ok, want = len(shape) == 1, "one dimension"
    else:
        ok, want = shape == (), "a scalar ()"
    if not ok:
        raise ProtocolError(f"{field}.shape", want, shape)


def _check_required(rule, roles) -> None:  # noqa: ANN001
    missing = [role_name(r) for r in sorted(rule.required) if r not in roles]
    if missing:
        raise ProtocolError("tensors", f"a {missing[0]} tensor", "none")


def _check_episode_flags(flags: int, tensors: dict[int, np.ndarray]) -> None:
    if Role.EPISODE_FLAGS not in tensors:
        return
    if flags & BROADCAST_EPISODE_FLAGS:
        raise ProtocolError(
            "header.flags",
            "no terminal/truncated bits beside an episode_flags tensor",
            f"{flags:#x}",
        )
    values = np.asarray(tensors[Role.EPISODE_FLAGS])
    if values.size and int(values.max()) & ~KNOWN_EPISODE_FLAGS:
        raise ProtocolError(
            "episode_flags", f"only bits {KNOWN_EPISODE_FLAGS:#x}", f"{int(values.max()):#x}"
        )


def _view(i: int, frame: Frame, dtype: np.dtype, shape: tuple, elements: int) -> np.ndarray:
    buf = header.buffer(2 + i, frame)
    expected = elements * dtype.itemsize
    if buf.nbytes != expected:
        raise ProtocolError(f"tensor[{i}].payload", f"{expected} bytes", f"{buf.nbytes} bytes")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    arr.flags.writeable = False
    return arr


def _as_wire_array(role: int, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in DTYPE_CODES:
        raise ProtocolError(
            f"{role_name(role)}.dtype", "bool, (u)int8..64 or float16/32/64", str(arr.dtype)
        )
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d scalars 0-d
