"""One WebSocket connection bridged to the broker's frontend through its own DEALER.

Requests go from the WebSocket to the DEALER unchanged (the envelope's frames are the
RLX frames); replies come back the same way. The broker sees an ordinary client: its
identity is the DEALER's, so affinity, re-homing, RESTART, BUSY and admission work as
over ZeroMQ. What the bridge adds is the care a browser-facing port needs:

- a message above ``max_message_bytes`` is answered TOO_LARGE here, never forwarded, and
  charged to the connection's refusal budget: once spent, the connection is closed (1008);
- the connection's budget (``budget.ConnectionBudget``) and its requests in flight
  (``max_in_flight``) are enforced by waiting before the next read: TCP then slows a
  flooding sender down, and the gateway holds only websockets' few queued messages;
- replies go from the DEALER to the transport in one reader callback; when the transport
  takes no more (the client does not read), one reply is held, the rest wait in ZeroMQ,
  and after ``send_timeout`` of that the connection is dropped;
- a silent connection is closed after ``idle_timeout``;
- the blocks a connection opened are closed at the broker when it goes away.

Any fault closes this connection alone, with a WebSocket close code (docs/protocol.md,
section 8); nothing here can stop the gateway.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import zmq
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import ErrorCode, MessageType, encode, header, messages
from relaax_zmq.protocol.websocket import pack, unpack

from .budget import ConnectionBudget
from .handshake import peer_name

log = logging.getLogger(__name__)

_HEAD = header.LAYOUT  # the spec's header; frame 0 of a valid message is exactly its size
_READY = int(MessageType.READY)
# plain ints: pyzmq's flag enums cost microseconds per frame on the hot path
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
#: Messages at least this large are handed to ZeroMQ without a copy.
ZERO_COPY_BYTES = 1 << 16
_CLOSE = int(MessageType.CLOSE)


@dataclass(frozen=True)
class BridgeLimits:
    """What one connection may do (``gateway`` section)."""

    max_message_bytes: int
    max_frames: int
    max_sessions: int
    max_in_flight: int
    request_timeout: float
    idle_timeout: float
    send_timeout: float


class Bridge:
    """Serves one connection until either side ends it (``run``)."""

    def __init__(
        self,
        ws: ServerConnection,
        dealer: zmq.Socket,
        limits: BridgeLimits,
        budget: ConnectionBudget,
        counters: Any,
    ) -> None:
        self.ws = ws
        self.dealer = dealer
        self.limits = limits
        self.budget = budget
        self.counters = counters
        #: send times of requests awaiting replies (oldest first)
        self.in_flight: collections.deque[float] = collections.deque()
        self._replied = asyncio.Event()
        #: blocks granted to this connection and not closed: first session id -> count
        self.blocks: dict[int, int] = {}
        self.last_request = time.monotonic()
        #: a reply waiting for the client to read (the transport is full), and its writer
        self._backlog: bytes | None = None
        self._writer: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._fd = dealer.getsockopt(zmq.FD)

    async def run(self) -> None:
        """Forward both ways until the WebSocket closes or a limit closes it (the reply
        side's end, the slow-reader watchdog's abort, closes the WebSocket too)."""
        self._loop.add_reader(self._fd, self._on_readable)
        try:
            with contextlib.suppress(ConnectionClosed):
                await self._requests()
        finally:
            self._loop.remove_reader(self._fd)
            if self._writer is not None:
                self._writer.cancel()
            self._close_blocks()

    # ---------------------------------------------------------------- requests

    async def _requests(self) -> None:
        limits = self.limits
        idle = asyncio.create_task(self._close_when_idle())
        try:
            while True:
                data = await self.ws.recv()
                if self.ws.state is not State.OPEN:  # closing: what it still queued is dropped
                    return
                self.last_request = time.monotonic()
                if isinstance(data, str):
                    self.counters.closed["text"] += 1
                    await self.ws.close(1003, "expected binary RLX envelopes, got a text message")
                    return
                try:
                    frames = unpack(data, limits.max_frames)
                except ProtocolError as exc:
                    self.counters.closed["malformed"] += 1
                    await self.ws.close(1002, str(exc)[:120])
                    return
                self.counters.requests += 1
                self.counters.bytes_in += len(data)
                # the envelope is never smaller than its frames: most messages need no sum
                size = len(data)
                if size > limits.max_message_bytes:
                    size = sum(f.nbytes for f in frames)
                if size > limits.max_message_bytes:
                    await self._too_large(frames, size)
                    if not self.budget.refused(size, self.last_request):
                        self.counters.closed["refusals"] += 1
                        await self.ws.close(1008, "refusal budget spent (too many refused)")
                        return
                else:
                    await self._forward(frames, size)
                delay = self.budget.delay(len(data), self.last_request)
                if delay > 0:  # over budget: read nothing more for a while (TCP backpressure)
                    self.counters.throttled_s += delay
                    await asyncio.sleep(delay)
                await self._wait_for_room()
        finally:
            idle.cancel()

    async def _close_when_idle(self) -> None:
        """Close the connection once it has sent nothing for ``idle_timeout``."""
        timeout = self.limits.idle_timeout
        while True:
            left = self.last_request + timeout - time.monotonic()
            if left <= 0:
                self.counters.closed["idle"] += 1
                await self.ws.close(1001, f"idle for {timeout:g} s")
                return
            await asyncio.sleep(left)

    async def _forward(self, frames: list[memoryview], size: int) -> None:
        head = frames[0]
        if head.nbytes == _HEAD.size:
            _, _, mtype, _, _, session, *_ = _HEAD.unpack_from(head)
            if mtype == _CLOSE:
                self.blocks.pop(session, None)
        now = self.last_request
        self.in_flight.append(now)
        deadline = now + self.limits.request_timeout
        while True:
            try:  # small messages are cheaper copied than wrapped in zero-copy frames
                self.dealer.send_multipart(frames, _NOBLOCK, copy=size < ZERO_COPY_BYTES)
                break
            except zmq.Again:  # the broker reads nothing: wait (the client waits with us)
                if time.monotonic() > deadline:
                    self.counters.dropped += 1
                    break
                await asyncio.sleep(0.001)
        self._on_readable()  # ZeroMQ's descriptor is edge-triggered: a send can hide a reply

    async def _too_large(self, frames: list[memoryview], size: int) -> None:
        """A TOO_LARGE error echoing the request's ids (the spec's echo rule), never
        forwarded to the broker."""
        self.counters.too_large += 1
        sequence, session, count = header.salvage(frames, self.limits.max_sessions)
        text = f"message: expected at most {self.limits.max_message_bytes} bytes, got {size}"
        error = messages.error(
            ErrorCode.TOO_LARGE, text, sequence=sequence, session_id=session, session_count=count
        )
        await self._send(pack(encode(error)))

    async def _wait_for_room(self) -> None:
        """Until fewer than ``max_in_flight`` requests await replies (unanswered ones
        older than the request timeout no longer count)."""
        limits, in_flight = self.limits, self.in_flight
        while len(in_flight) >= limits.max_in_flight and self.ws.state is State.OPEN:
            expired = time.monotonic() - limits.request_timeout
            while in_flight and in_flight[0] < expired:
                in_flight.popleft()
            if len(in_flight) < limits.max_in_flight:
                return
            self.counters.in_flight_waits += 1
            self._replied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replied.wait(), limits.request_timeout)

    # ----------------------------------------------------------------- replies

    def _on_readable(self) -> None:
        """Every reply ZeroMQ holds, written to the WebSocket at once; when the transport
        takes no more, the rest waits in ZeroMQ while ``_write_when_drained`` waits."""
        if self._backlog is not None:
            return
        dealer, ws = self.dealer, self.ws
        try:
            while dealer.getsockopt(_EVENTS) & _POLLIN:
                frames = dealer.recv_multipart(_NOBLOCK, copy=False)
                if self.in_flight:
                    self.in_flight.popleft()
                    self._replied.set()
                head = frames[0].buffer
                if len(head) == _HEAD.size:
                    _, _, mtype, _, _, session, count, *_ = _HEAD.unpack_from(head)
                    if mtype == _READY:
                        self.blocks[session] = count
                self.counters.replies += 1
                data = pack(frames)
                if ws.paused or ws.protocol.state is not State.OPEN:
                    self._backlog = data  # no more reading replies until it is written
                    self._loop.remove_reader(self._fd)
                    self._writer = asyncio.ensure_future(self._write_when_drained())
                    return
                ws.protocol.send_binary(data)
                ws.send_data()
                self.counters.bytes_out += len(data)
        except Exception:  # one connection's fault must not reach the event loop
            log.exception("%s: forwarding a reply failed; connection closed", peer_name(self.ws))
            ws.transport.abort()

    async def _write_when_drained(self) -> None:
        """Write the held reply once the client reads again; a client that does not read
        for ``send_timeout`` is closed (the watchdog aborts the transport, dropping what
        it did not read)."""
        assert self._backlog is not None
        if await self._send(self._backlog):
            self._backlog = None
            self._loop.add_reader(self._fd, self._on_readable)
            self._on_readable()

    async def _send(self, data: bytes) -> bool:
        """Write one message, waiting while the client does not read (at most
        ``send_timeout``, then the connection is aborted)."""
        watchdog = asyncio.get_running_loop().call_later(self.limits.send_timeout, self._abort)
        try:
            await self.ws.send(data)
        except ConnectionClosed:
            return False
        finally:
            watchdog.cancel()
        self.counters.bytes_out += len(data)
        return True

    def _abort(self) -> None:
        self.counters.closed["slow_reader"] += 1
        log.warning(
            "closing %s: it read no reply for %g s", peer_name(self.ws), self.limits.send_timeout
        )
        self.ws.transport.abort()
        self._replied.set()  # the request side stops waiting for room

    def _close_blocks(self) -> None:
        """Tell the broker that this connection's blocks are gone (their sessions free)."""
        for session, count in self.blocks.items():
            close = messages.simple(MessageType.CLOSE, session, count)
            try:
                self.dealer.send_multipart(encode(close), zmq.NOBLOCK)
                self.counters.blocks_closed += 1
            except zmq.ZMQError:
                log.warning(
                    "%s: could not close block %d at the broker", peer_name(self.ws), session
                )
        self.blocks.clear()
