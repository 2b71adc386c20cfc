"""Which tensors, flags and session counts each RLX message type admits.

Both codecs enforce these rules, in the order docs/protocol.md gives, so that a
message is valid for one backend exactly when it is valid for the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from relaax_zmq.protocol.constants import DType, Flag, MessageType, Role

FLOATS = frozenset({DType.FLOAT32, DType.FLOAT64})
ANY_DTYPE = frozenset(DType)


class Shape(IntEnum):
    """How a role's shape relates to the header's session count N."""

    SESSION_VECTOR = 1  #: exactly (N,)
    PER_SESSION = 2  #: (N, ...), at least one dimension
    VECTOR = 3  #: any one-dimensional shape
    SCALAR = 4  #: zero dimensions


@dataclass(frozen=True)
class RoleRule:
    """The dtypes and the shape a tensor of one role may have."""

    dtypes: frozenset[int]
    shape: Shape


@dataclass(frozen=True)
class TypeRule:
    """What one message type may carry."""

    flags: int
    roles: frozenset[int]
    required: frozenset[int]
    min_sessions: int

    def __post_init__(self) -> None:
        # a plain int: IntFlag arithmetic costs microseconds on every checked header
        object.__setattr__(self, "flags", int(self.flags))


ROLE_RULES: dict[int, RoleRule] = {
    Role.REWARD: RoleRule(FLOATS, Shape.SESSION_VECTOR),
    Role.STATE: RoleRule(ANY_DTYPE, Shape.PER_SESSION),
    Role.EPISODE_FLAGS: RoleRule(frozenset({DType.UINT8}), Shape.SESSION_VECTOR),
    Role.ACTION: RoleRule(ANY_DTYPE, Shape.PER_SESSION),
    Role.METRIC_NAMES: RoleRule(frozenset({DType.UINT8}), Shape.VECTOR),
    Role.METRIC_VALUES: RoleRule(frozenset({DType.FLOAT64}), Shape.VECTOR),
    Role.HISTOGRAM_NAMES: RoleRule(frozenset({DType.UINT8}), Shape.VECTOR),
    Role.HISTOGRAM_LENGTHS: RoleRule(frozenset({DType.UINT32}), Shape.VECTOR),
    Role.HISTOGRAM_VALUES: RoleRule(FLOATS, Shape.VECTOR),
    Role.ERROR_CODE: RoleRule(frozenset({DType.UINT16}), Shape.SCALAR),
    Role.TEXT: RoleRule(frozenset({DType.UINT8}), Shape.VECTOR),
    Role.VERSIONS: RoleRule(frozenset({DType.UINT8}), Shape.VECTOR),
}

_NONE: frozenset[int] = frozenset()
_METRICS = frozenset(
    {
        Role.METRIC_NAMES,
        Role.METRIC_VALUES,
        Role.HISTOGRAM_NAMES,
        Role.HISTOGRAM_LENGTHS,
        Role.HISTOGRAM_VALUES,
    }
)

TYPE_RULES: dict[int, TypeRule] = {
    MessageType.INIT: TypeRule(Flag.EXPLOIT, _NONE, _NONE, 1),
    MessageType.READY: TypeRule(Flag.EXPLOIT, frozenset({Role.VERSIONS}), _NONE, 1),
    MessageType.UPDATE: TypeRule(
        Flag.TERMINAL | Flag.TRUNCATED,
        frozenset({Role.REWARD, Role.STATE, Role.EPISODE_FLAGS}),
        _NONE,
        1,
    ),
    MessageType.ACTION: TypeRule(
        Flag.RESTART, frozenset({Role.ACTION}), frozenset({Role.ACTION}), 1
    ),
    MessageType.RESET: TypeRule(0, _NONE, _NONE, 1),
    MessageType.DONE: TypeRule(Flag.RESTART, _NONE, _NONE, 0),
    MessageType.METRICS: TypeRule(0, _METRICS, _NONE, 1),
    MessageType.CLOSE: TypeRule(0, _NONE, _NONE, 0),
    MessageType.HEARTBEAT: TypeRule(0, _NONE, _NONE, 0),
    MessageType.ERROR: TypeRule(
        Flag.RESTART,
        frozenset({Role.ERROR_CODE, Role.TEXT, Role.VERSIONS}),
        frozenset({Role.ERROR_CODE}),
        0,
    ),
}
