"""Builders for every RLX message type and readers for the structured ones.

Builders return a ``Message`` ready for ``encode``; readers turn a decoded
message into Python values and raise ``ProtocolError`` when its tensors
disagree with each other (a name count that differs from the value count...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol.constants import EpisodeFlag, ErrorCode, Flag, MessageType, Role
from relaax_zmq.protocol.message import Message

_REWARD_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# plain ints: IntFlag arithmetic costs microseconds on every update
_TERMINAL = int(Flag.TERMINAL)
_TRUNCATED = int(Flag.TRUNCATED)


def init(
    session_count: int = 1, *, exploit: bool = False, session_id: int = 0, sequence: int = 0
) -> Message:
    """Ask for ``session_count`` sessions (``session_id`` 0: new ones; else resume that block)."""
    flags = Flag.EXPLOIT if exploit else 0
    return Message(
        MessageType.INIT,
        flags=int(flags),
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
    )


def ready(
    session_id: int,
    session_count: int = 1,
    *,
    exploit: bool = False,
    sequence: int = 0,
    versions: Sequence[int] | None = None,
) -> Message:
    """Grant the block of sessions ``session_id .. session_id + session_count - 1``."""
    tensors = {} if versions is None else {Role.VERSIONS: np.asarray(versions, np.uint8)}
    return Message(
        MessageType.READY,
        flags=int(Flag.EXPLOIT) if exploit else 0,
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
        tensors=tensors,
    )


def update(
    session_id: int,
    *,
    reward: ArrayLike | None = None,
    state: ArrayLike | None = None,
    terminal: bool | ArrayLike = False,
    truncated: bool | ArrayLike = False,
    session_count: int | None = None,
    sequence: int = 0,
) -> Message:
    """One environment step for every session of a block.

    ``reward`` has shape (N,), ``state`` (N, ...). ``terminal``/``truncated`` are
    either one bool for all sessions (header flags) or arrays of N bools (an
    ``episode_flags`` tensor). N comes from the arrays or ``session_count``.
    """
    tensors: dict[int, np.ndarray] = {}
    if reward is not None:
        tensors[Role.REWARD] = rewards(reward)
    if state is not None:
        tensors[Role.STATE] = np.asarray(state)
    n = _session_count(tensors, session_count, terminal, truncated)
    flags = 0
    if np.ndim(terminal) == 0 and np.ndim(truncated) == 0:
        flags = (_TERMINAL if terminal else 0) | (_TRUNCATED if truncated else 0)
    else:
        tensors[Role.EPISODE_FLAGS] = episode_flags(
            np.broadcast_to(np.asarray(terminal, bool), (n,)),
            np.broadcast_to(np.asarray(truncated, bool), (n,)),
        )
    return Message(
        MessageType.UPDATE,
        flags=flags,
        sequence=sequence,
        session_id=session_id,
        session_count=n,
        tensors=tensors,
    )


def rewards(reward: ArrayLike) -> np.ndarray:
    """Rewards as they travel: float32 and float64 arrays as they are, anything else
    (floats, lists, ints) as float32."""
    if isinstance(reward, np.ndarray) and reward.dtype in _REWARD_DTYPES:
        return reward
    return np.asarray(reward, np.float32)


def episode_flags(terminal: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """The episode_flags tensor of two bool arrays of N: bit 0x1 terminal, 0x2 truncated."""
    return terminal.view(np.uint8) | truncated.view(np.uint8) << 1


def boundary_flags(ends: int) -> int:
    """The header flags (TERMINAL, TRUNCATED) that say for a whole block what one
    ``episode_flags`` value says for each of its sessions: the block's episode boundary."""
    terminal = _TERMINAL if ends & EpisodeFlag.TERMINAL else 0
    return terminal | (_TRUNCATED if ends & EpisodeFlag.TRUNCATED else 0)


def action(
    session_id: int, actions: ArrayLike, *, sequence: int = 0, restart: bool = False
) -> Message:
    """The agents' actions for a block: shape (N, ...)."""
    arr = np.asarray(actions)
    return Message(
        MessageType.ACTION,
        flags=int(Flag.RESTART) if restart else 0,
        sequence=sequence,
        session_id=session_id,
        session_count=arr.shape[0] if arr.ndim else 1,
        tensors={Role.ACTION: arr},
    )


def simple(
    message_type: MessageType,
    session_id: int = 0,
    session_count: int = 1,
    *,
    sequence: int = 0,
    restart: bool = False,
) -> Message:
    """A message without tensors: reset, done, close or heartbeat."""
    return Message(
        message_type,
        flags=int(Flag.RESTART) if restart else 0,
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
    )


def metrics(
    session_id: int,
    scalars: Mapping[str, float] | None = None,
    histograms: Mapping[str, ArrayLike] | None = None,
    *,
    session_count: int = 1,
    sequence: int = 0,
) -> Message:
    """Scalars and histograms in one message (never one round trip per metric)."""
    tensors: dict[int, np.ndarray] = {}
    if scalars:
        tensors[Role.METRIC_NAMES] = _names(scalars)
        tensors[Role.METRIC_VALUES] = np.asarray(list(scalars.values()), np.float64)
    if histograms:
        values = [np.asarray(v, np.float64).ravel() for v in histograms.values()]
        tensors[Role.HISTOGRAM_NAMES] = _names(histograms)
        tensors[Role.HISTOGRAM_LENGTHS] = np.asarray([v.size for v in values], np.uint32)
        tensors[Role.HISTOGRAM_VALUES] = np.concatenate(values) if values else np.zeros(0)
    return Message(
        MessageType.METRICS,
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
        tensors=tensors,
    )


def error(
    code: ErrorCode | int,
    text: str = "",
    *,
    sequence: int = 0,
    session_id: int = 0,
    session_count: int = 0,
    versions: Sequence[int] | None = None,
    restart: bool = False,
) -> Message:
    """Refuse a request: an error code, a human-readable text, supported versions."""
    tensors = {Role.ERROR_CODE: np.asarray(int(code), np.uint16)}
    if text:
        tensors[Role.TEXT] = np.frombuffer(text.encode("utf-8"), np.uint8)
    if versions is not None:
        tensors[Role.VERSIONS] = np.asarray(versions, np.uint8)
    return Message(
        MessageType.ERROR,
        flags=int(Flag.RESTART) if restart else 0,
        sequence=sequence,
        session_id=session_id,
        session_count=session_count,
        tensors=tensors,
    )


def read_episode_ends(message: Message) -> tuple[np.ndarray, np.ndarray]:
    """(terminal, truncated) as bool arrays of N, from flags or the episode_flags tensor."""
    n = message.session_count
    ends = message.tensors.get(Role.EPISODE_FLAGS)
    if ends is None:
        return (
            np.full(n, bool(message.flags & Flag.TERMINAL)),
            np.full(n, bool(message.flags & Flag.TRUNCATED)),
        )
    return (ends & EpisodeFlag.TERMINAL).astype(bool), (ends & EpisodeFlag.TRUNCATED).astype(bool)


def read_metrics(message: Message) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The scalars and histograms of a METRICS message."""
    t = message.tensors
    names = _read_names(t.get(Role.METRIC_NAMES), "metric_names")
    values = t.get(Role.METRIC_VALUES, np.zeros(0))
    _same_count("metric_values", len(names), values.size)
    hist_names = _read_names(t.get(Role.HISTOGRAM_NAMES), "histogram_names")
    lengths = t.get(Role.HISTOGRAM_LENGTHS, np.zeros(0, np.uint32))
    _same_count("histogram_lengths", len(hist_names), lengths.size)
    flat = t.get(Role.HISTOGRAM_VALUES, np.zeros(0))
    _same_count("histogram_values", int(lengths.sum(dtype=np.uint64)), flat.size)
    bounds = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    histograms = {name: flat[bounds[i] : bounds[i + 1]] for i, name in enumerate(hist_names)}
    return dict(zip(names, values.tolist(), strict=True)), histograms


def read_error(message: Message) -> tuple[int, str, tuple[int, ...]]:
    """(code, text, supported versions) of an ERROR message."""
    code = int(message.tensors[Role.ERROR_CODE])
    text_bytes = message.tensors.get(Role.TEXT)
    text = _utf8(text_bytes, "text") if text_bytes is not None else ""
    versions = message.tensors.get(Role.VERSIONS)
    return code, text, tuple(int(v) for v in versions) if versions is not None else ()


def _session_count(tensors: Mapping[int, np.ndarray], given: int | None, *flags: object) -> int:
    if given is not None:
        return given
    for arr in (*tensors.values(), *flags):
        if np.ndim(arr) >= 1:
            return int(np.shape(arr)[0])
    return 1


def _names(mapping: Iterable[str]) -> np.ndarray:
    names = list(mapping)
    for name in names:
        if not name or "\n" in name:
            raise ProtocolError("metric name", "a non-empty name without newlines", _quoted(name))
    return np.frombuffer("\n".join(names).encode("utf-8"), np.uint8)


def _quoted(name: str) -> str:
    """``name`` in double quotes, a newline written ``\\n`` (error texts show no Python repr)."""
    return '"' + name.replace("\n", "\\n") + '"'


def _read_names(blob: np.ndarray | None, field: str) -> list[str]:
    if blob is None or blob.size == 0:
        return []
    names = _utf8(blob, field).split("\n")
    if "" in names:
        raise ProtocolError(field, "non-empty names", f"an empty name at index {names.index('')}")
    return names


def _utf8(blob: np.ndarray, field: str) -> str:
    try:
        return blob.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(field, "UTF-8 text", f"invalid byte at {exc.start}") from None


def _same_count(field: str, expected: int, actual: int) -> None:
    if expected != actual:
        raise ProtocolError(field, f"{expected} values", f"{actual} values")
