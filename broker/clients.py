"""The client side of the broker: RLX requests from the frontend.

Init, heartbeat and close are answered here; update, reset and metrics are
forwarded to the block's worker as link REQ and kept in flight until the
worker's reply (``worker_link``) comes back. Only the envelope is read, never
a payload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import (
    SUPPORTED_VERSIONS,
    ErrorCode,
    Flag,
    MessageType,
    Role,
    encode,
    header,
    link,
    messages,
)
from relaax_zmq.protocol.constants import VERSION, type_name
from relaax_zmq.protocol.envelope import Envelope, message_bytes, peek
from relaax_zmq.protocol.link import Command
from relaax_zmq.protocol.refusal import refusal

from .balance import admission_refusal, least_loaded
from .outbox import Outbox
from .placement import Placement
from .sessions import MAX_IN_FLIGHT, Block, InFlight, SessionTable, not_owned
from .stats import Counters, RateWindow

# the daemon's log name, the same for every module of the broker
log = logging.getLogger(__name__)

_BOUNDARY_FLAGS = int(Flag.TERMINAL | Flag.TRUNCATED)
_FORWARDED = (MessageType.UPDATE, MessageType.RESET, MessageType.METRICS)


class ClientSide:
    """Handles each client message (``on_message``) against the block table."""

    def __init__(
        self,
        config: AppConfig,
        sessions: SessionTable,
        counters: Counters,
        rates: RateWindow,
        out: Outbox,
        placement: Placement,
        memory: Callable[[], int],
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.counters = counters
        self.rates = rates
        self.placement = placement
        self._memory = memory
        self._limits = out.limits
        self._max_bytes = config.broker.max_message_bytes or config.protocol.max_message_bytes
        # bound once: the per-message path makes no more calls than a method of its own would
        self._reply = out.reply
        self._send_backend = out.send_backend
        self._control = out.control
        self._error = out.error

    def on_message(self, frames: list[Any]) -> None:
        """One message from the frontend: ``[client identity, *RLX frames]``."""
        now = time.monotonic()
        identity = frames[0].bytes
        msg = frames[1:]
        self.counters.requests += 1
        self.rates.add(now, messages=1)
        size = message_bytes(msg)
        if size > self._max_bytes:
            text = f"at most {self._max_bytes} bytes"
            self._refuse(identity, msg, ProtocolError("message", text, f"{size} bytes"))
            return
        try:
            env = peek(msg, self._limits)
        except ProtocolError as exc:
            self._refuse(identity, msg, exc)
            return
        mtype = env.type
        if mtype in _FORWARDED:
            self._forward(identity, env, msg, now)
        elif mtype == MessageType.INIT:
            self._on_init(identity, env, now)
        elif mtype == MessageType.HEARTBEAT:
            self._on_heartbeat(identity, env, now)
        elif mtype == MessageType.CLOSE:
            self._on_close(identity, env)
        else:
            text = (
                "header.type: expected a request (init, update, reset, metrics, close or "
                f"heartbeat), got {type_name(mtype)}"
            )
            self._answer_error(identity, env, ErrorCode.UNKNOWN_TYPE, text)

    def on_refused(self, frames: list[Any], why: str) -> None:
        """A message on a connection whose key is no longer allowed (revoked since its
        handshake): answered ``AUTH``, echoing what the header gives; nothing else done."""
        sequence, session_id, count = header.salvage(frames[1:], self._limits.max_sessions)
        self._error(
            frames[0].bytes,
            ErrorCode.AUTH,
            f"refused: {why}",
            sequence=sequence,
            session_id=session_id,
            session_count=count,
        )

    def _answer_error(self, identity: bytes, env: Envelope, code: ErrorCode, text: str) -> None:
        """An error reply echoing the request's sequence and block."""
        self._error(
            identity,
            code,
            text,
            sequence=env.sequence,
            session_id=env.session_id,
            session_count=env.session_count,
        )

    def _refuse(self, identity: bytes, msg: list[Any], exc: ProtocolError) -> None:
        reply = refusal(exc, msg, self._limits)
        self.counters.error(int(reply.tensors[Role.ERROR_CODE]))
        self._reply(identity, encode(reply, self._limits))

    def _owned(self, identity: bytes, env: Envelope) -> Block | None:
        """The live block the request names, when this connection owns it; else answer."""
        block = self.sessions.owned(env.session_id, env.session_count, identity)
        if block is None:
            text = not_owned(env.session_id, env.session_count)
            self._answer_error(identity, env, ErrorCode.UNKNOWN_SESSION, text)
        return block

    def _forward(self, identity: bytes, env: Envelope, msg: list[Any], now: float) -> None:
        block = self._owned(identity, env)
        if block is None:
            return
        if env.sequence in block.in_flight:
            text = f"header.sequence: expected a sequence not in flight, got {env.sequence}"
            self._answer_error(identity, env, ErrorCode.MALFORMED, text)
            return
        block.last_seen = now
        if len(block.in_flight) >= MAX_IN_FLIGHT:
            text = (
                f"session {env.session_id}: {MAX_IN_FLIGHT} requests in flight, at most; "
                "wait for their replies"
            )
            self._answer_error(identity, env, ErrorCode.BUSY, text)
            return
        boundary = env.type == MessageType.RESET or (
            env.type == MessageType.UPDATE and bool(env.flags & _BOUNDARY_FLAGS)
        )
        block.in_flight[env.sequence] = InFlight(identity, msg, boundary, now)
        self.counters.forwarded += 1
        if env.type == MessageType.UPDATE:
            self.rates.add(now, steps=env.session_count)
        self._send_backend(block.worker, link.forward(Command.REQUEST, identity, msg))

    def _on_init(self, identity: bytes, env: Envelope, now: float) -> None:
        n = env.session_count
        block = self.sessions.resumable(env.session_id, n)
        if block is not None:
            self._resume(identity, env, block, now)
            return
        loads, names = self.placement.loads(now)
        refused = admission_refusal(
            self._memory(), self.config.broker.min_free_memory_mib, loads, n
        )
        target = None if refused else least_loaded(loads, n)
        if target is None:
            self.counters.refused_inits += 1
            self._answer_error(
                identity, env, ErrorCode.BUSY, refused or "capacity: no worker has room"
            )
            return
        exploit = bool(env.flags & Flag.EXPLOIT)
        block = self.sessions.add(n, exploit, names[target], identity, now)
        self.placement.assign(block, restart=False)
        log.debug("block %d (%d sessions) on %s", block.id, n, target)
        self._ready(identity, env, block)

    def _resume(self, identity: bytes, env: Envelope, block: Block, now: float) -> None:
        """Bind a live block to a new connection; its worker ends the block's episodes."""
        dropped = self.sessions.rebind(block, identity, now)  # their replies are stale now
        self.counters.resumed_blocks += 1
        self._control(block.worker, Command.RESTART, session_id=block.id)
        log.info("block %d resumed (%d requests in flight dropped)", block.id, dropped)
        self._ready(identity, env, block)

    def _ready(self, identity: bytes, env: Envelope, block: Block) -> None:
        message = messages.ready(
            block.id,
            block.count,
            exploit=block.exploit,
            sequence=env.sequence,
            versions=SUPPORTED_VERSIONS,
        )
        self._reply(identity, encode(message, self._limits))

    def _on_heartbeat(self, identity: bytes, env: Envelope, now: float) -> None:
        if env.session_id:
            block = self._owned(identity, env)
            if block is None:
                return
            block.last_seen = now
        self._simple(identity, MessageType.HEARTBEAT, env)

    def _on_close(self, identity: bytes, env: Envelope) -> None:
        if env.session_id:
            block = self._owned(identity, env)
            if block is None:
                return
            self.placement.release(block, "closed", answer=False)
        self._simple(identity, MessageType.DONE, env)

    def _simple(
        self, identity: bytes, mtype: MessageType, env: Envelope, session_count: int | None = None
    ) -> None:
        """A tensor-less reply (done, heartbeat) echoing the request's ids."""
        n = env.session_count if session_count is None else session_count
        head = header.Header(VERSION, int(mtype), 0, env.sequence, env.session_id, n, 0)
        self._reply(identity, [header.pack(head)])
