"""Regenerate relaax_zmq/protocol/testdata/rlx_v1_vectors.txt.

Run from the repository root: ``python scripts/make_protocol_vectors.py``.
The file is checked in; tests require every codec to reproduce it byte for
byte. Regenerating may add entries; an existing entry changes only with the
protocol version. Its format: docs/protocol.md, section 7; the invalid entries
are in scripts/protocol_invalid_vectors.py.
"""

from __future__ import annotations

import numpy as np
from protocol_invalid_vectors import error_code, invalid_cases

from relaax_zmq.protocol import messages as m
from relaax_zmq.protocol import reference
from relaax_zmq.protocol.constants import ErrorCode, MessageType, Role
from relaax_zmq.protocol.limits import DEFAULT_LIMITS
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.protocol.vectors import VECTOR_FILE, Vector, format_vectors

U64_MAX = 0xFFFFFFFFFFFFFFFF


def valid_cases() -> list[tuple[str, str, Message]]:
    f32 = np.float32
    image = np.arange(3 * 2 * 3 * 4, dtype=np.uint8).reshape(3, 2, 3, 4)
    return [
        ("init_single", "init: one session, training mode", m.init(1)),
        (
            "init_exploit_batch",
            "init: 64 sessions in exploit mode",
            m.init(64, exploit=True, sequence=1),
        ),
        (
            "init_resume",
            "init: resume the block of 4 sessions starting at 0x0123456789abcdef",
            m.init(4, session_id=0x0123456789ABCDEF, sequence=2),
        ),
        (
            "ready_single",
            "ready: session 1000 granted, server speaks versions [1]",
            m.ready(1000, 1, versions=[1]),
        ),
        (
            "ready_exploit_batch",
            "ready: 64 exploit sessions from 5000",
            m.ready(5000, 64, exploit=True, sequence=1),
        ),
        (
            "update_first_step",
            "update: first step of an episode: a state, no reward",
            m.update(1000, state=np.array([[0.5, -0.25, 0.125, 2.0]], f32), sequence=3),
        ),
        (
            "update_single_terminal",
            "update: reward and state of one session, episode over",
            m.update(
                1000,
                reward=np.array([1.0], f32),
                state=np.array([[1, 2, 3, 4]], f32),
                terminal=True,
                sequence=4,
            ),
        ),
        (
            "update_truncated",
            "update: time limit reached (truncated), float64 reward",
            m.update(
                1000,
                reward=np.array([-0.5]),
                state=np.array([[0.0, 1.0]]),
                truncated=True,
                sequence=5,
            ),
        ),
        (
            "update_batch_images",
            "update: 3 sessions, uint8 images (3,2,3,4), per-session episode flags",
            m.update(
                7,
                reward=np.array([0.0, 1.5, -1.0]),
                state=image,
                terminal=[False, True, False],
                truncated=[False, False, True],
                sequence=6,
            ),
        ),
        (
            "update_int32_state",
            "update: int32 state",
            m.update(1, state=np.array([[1, -2, 3], [2**31 - 1, -(2**31), 0]], np.int32)),
        ),
        (
            "update_int64_state",
            "update: int64 state",
            m.update(1, state=np.array([[2**63 - 1, -(2**63)]], np.int64)),
        ),
        (
            "update_bool_state",
            "update: bool state",
            m.update(1, state=np.array([[True, False, True, True, False]])),
        ),
        (
            "update_uint8_state",
            "update: uint8 state",
            m.update(1, state=np.array([[0, 255, 7]], np.uint8)),
        ),
        (
            "update_small_ints",
            "update: int8 state with float32 reward",
            m.update(1, reward=np.array([2.5], f32), state=np.array([[-128, 127]], np.int8)),
        ),
        (
            "update_wide_ints",
            "update: int16 state",
            m.update(1, state=np.array([[-32768, 32767]], np.int16)),
        ),
        (
            "update_uint16_state",
            "update: uint16 state",
            m.update(1, state=np.array([[65535, 1]], np.uint16)),
        ),
        (
            "update_uint32_state",
            "update: uint32 state",
            m.update(1, state=np.array([[2**32 - 1]], np.uint32)),
        ),
        (
            "update_uint64_state",
            "update: uint64 state",
            m.update(1, state=np.array([[U64_MAX]], np.uint64)),
        ),
        (
            "update_float16_state",
            "update: float16 state",
            m.update(1, state=np.array([[0.5, -2.0, 65504.0]], np.float16)),
        ),
        (
            "update_float64_specials",
            "update: float64 state with nan and infinities",
            m.update(1, state=np.array([[np.nan, np.inf, -np.inf, -0.0]])),
        ),
        (
            "update_empty_state",
            "update: an empty state (2, 0) for 2 sessions",
            m.update(1, state=np.zeros((2, 0), f32)),
        ),
        (
            "update_eight_dims",
            "update: a state of 8 dimensions",
            m.update(1, state=np.arange(2, dtype=f32).reshape(1, 1, 1, 1, 1, 1, 1, 2)),
        ),
        (
            "update_block_episode_start",
            "update: 3 sessions; row 1 ended its episode on the previous step and now starts a\n"
            "new one: its reward is NaN (no action led to its state); row 2 ends its episode\n"
            "now (terminal), the action the reply gives for it is to be discarded",
            m.update(
                40,
                reward=np.array([1.0, np.nan, 0.5], f32),
                state=np.array([[0.25, -0.5], [0.0, 1.0], [0.75, 2.0]], f32),
                terminal=[False, False, True],
                truncated=[False, False, False],
                sequence=21,
            ),
        ),
        (
            "action_discrete",
            "action: one discrete action (int64)",
            m.action(1000, np.array([1], np.int64), sequence=3),
        ),
        (
            "action_continuous_batch",
            "action: 2 sessions, 3 continuous dimensions",
            m.action(7, np.array([[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]], f32), sequence=6),
        ),
        (
            "action_discrete_batch",
            "action: 3 sessions, discrete actions as the shipped algorithms send them: (N,) int64",
            m.action(40, np.array([0, 2, 1], np.int64), sequence=21),
        ),
        (
            "action_restart",
            "action: the session was re-homed: restart the episode",
            m.action(1000, np.array([0], np.int32), sequence=9, restart=True),
        ),
        (
            "reset",
            "reset: end the episodes of a block",
            m.simple(MessageType.RESET, 1000, 1, sequence=10),
        ),
        (
            "done",
            "done: reply to reset, metrics or close",
            m.simple(MessageType.DONE, 1000, 1, sequence=10),
        ),
        (
            "done_restart",
            "done with restart: the server lost the session",
            m.simple(MessageType.DONE, 1000, 1, sequence=11, restart=True),
        ),
        ("close", "close: the client leaves", m.simple(MessageType.CLOSE, 1000, 1, sequence=12)),
        (
            "heartbeat",
            "heartbeat: no session, largest sequence number",
            m.simple(MessageType.HEARTBEAT, 0, 0, sequence=U64_MAX),
        ),
        (
            "metrics_scalars",
            "metrics: two scalars",
            m.metrics(1000, {"episode_reward": 195.0, "steps_per_second": 1234.5}, sequence=13),
        ),
        (
            "metrics_histograms",
            "metrics: a scalar and two histograms",
            m.metrics(1000, {"loss": 0.25}, {"actions": [0, 1, 1], "values": [0.5]}, sequence=14),
        ),
        ("metrics_empty", "metrics: nothing to report", m.metrics(1000, sequence=15)),
        (
            "metrics_block",
            "metrics: a block of 4 sessions reports (metrics need N >= 1, like every block request)",
            m.metrics(40, {"episode_reward": -3.0}, session_count=4, sequence=22),
        ),
        (
            "error_busy",
            "error: admission refused, retry later",
            m.error(ErrorCode.BUSY, "no worker capacity; retry", sequence=1),
        ),
        (
            "error_version",
            "error: unsupported version, the server speaks [1]",
            m.error(ErrorCode.UNSUPPORTED_VERSION, "version 2 unsupported", versions=[1]),
        ),
        (
            "error_malformed_echo",
            "error: a request with a bad magic refused MALFORMED; the reply echoes its sequence,\n"
            "session_id and session_count (frame 0 held their bytes)",
            m.error(
                ErrorCode.MALFORMED,
                "header.magic: expected 52 4c 58 50 (RLXP), got 52 4c 58 51",
                sequence=0x1122334455667788,
                session_id=40,
                session_count=3,
            ),
        ),
        (
            "error_too_large_sessions",
            "error: an init for 5000 sessions refused TOO_LARGE; a count above the limit is\n"
            "echoed as 0 (the reply must itself be valid)",
            m.error(
                ErrorCode.TOO_LARGE,
                "header.session_count: expected 1..4096, got 5000",
                sequence=77,
            ),
        ),
        (
            "error_code_only",
            "error: a scalar uint16 code alone",
            m.error(ErrorCode.INTERNAL, session_id=5, session_count=1),
        ),
    ]


def build() -> list[Vector]:
    vectors = [
        Vector(name, [bytes(memoryview(f)) for f in reference.encode(msg)], msg, comment=comment)
        for name, comment, msg in valid_cases()
    ]
    for name, comment, field, frames in invalid_cases():
        try:
            reference.decode(frames)
        except Exception as exc:  # noqa: BLE001 - the generator checks its own cases
            if getattr(exc, "field", None) != field:
                raise SystemExit(f"{name}: expected {field}, got {exc!r}") from exc
            code = error_code(field, frames)
            answered = int(refusal(exc, frames, DEFAULT_LIMITS).tensors[Role.ERROR_CODE])
            if answered != code:
                raise SystemExit(
                    f"{name}: the spec says {code}, a server answers {answered}"
                ) from exc
        else:
            raise SystemExit(f"{name}: decoded without error")
        vectors.append(Vector(name, frames, error_field=field, error_code=code, comment=comment))
    return vectors


if __name__ == "__main__":
    header = (
        "# RLX protocol version 1 test vectors (docs/protocol.md). Generated by\n"
        "# scripts/make_protocol_vectors.py; every codec must reproduce each valid\n"
        "# vector byte for byte and refuse each invalid one naming the same field;\n"
        "# a server answers it with the error code given. Format: docs/protocol.md, 7.\n\n"
    )
    VECTOR_FILE.write_text(header + format_vectors(build()))
    print(f"wrote {VECTOR_FILE}")
