"""One WebSocket connection bridged to the broker's frontend through its own DEALER.

Requests go from the WebSocket to the DEALER unchanged (the envelope's frames are the
RLX frames); replies come back the same way. The broker sees an ordinary client: its
identity is the DEALER's, so affinity, re-homing, RESTART, BUSY and admission work as
over ZeroMQ. What the bridge adds is the care a browser-facing port needs:

- a message above ``max_message_bytes`` is answered TOO_LARGE here, never forwarded;
- the connection's budget (``budget.ConnectionBudget``) and its requests in flight
  (``max_in_flight``) are enforced by waiting before the next read: TCP then slows a
  flooding sender down, and the gateway holds at most one of its messages;
- a client that stops reading replies is closed after ``send_timeout`` (a reply that
  cannot be written blocks the reply loop, the DEALER's queue fills, the broker drops);
- a silent connection is closed after ``idle_timeout``;
- the blocks a connection opened are closed at the broker when it goes away.

Any fault closes this connection alone, with a WebSocket close code (docs/protocol.md,
section 8); nothing here can stop the gateway.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import time
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import ErrorCode, MessageType, encode, messages
from relaax_zmq.protocol.websocket import pack, unpack

from .budget import ConnectionBudget

log = logging.getLogger(__name__)

#: magic, version, type, flags, sequence, session_id, session_count (the header's start)
_HEAD = struct.Struct("<4sBBHQQI")
_READY = int(MessageType.READY)
#: Messages at least this large are handed to ZeroMQ without a copy.
ZERO_COPY_BYTES = 1 << 16
_CLOSE = int(MessageType.CLOSE)


@dataclass(frozen=True)
class BridgeLimits:
    """What one connection may do (``gateway`` section)."""

    max_message_bytes: int
    max_frames: int
    max_in_flight: int
    request_timeout: float
    idle_timeout: float
    send_timeout: float


class Bridge:
    """Serves one connection until either side ends it (``run``)."""

    def __init__(
        self,
        ws: ServerConnection,
        dealer: zmq.asyncio.Socket,
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

    async def run(self) -> None:
        """Forward both ways until the WebSocket closes or a limit closes it: whichever
        direction ends first (a close, the slow-reader watchdog) ends the other."""
        tasks = [asyncio.create_task(self._requests()), asyncio.create_task(self._replies())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and not isinstance(error, ConnectionClosed):
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_blocks()

    # ---------------------------------------------------------------- requests

    async def _requests(self) -> None:
        limits = self.limits
        idle = asyncio.create_task(self._close_when_idle())
        try:
            while True:
                data = await self.ws.recv()
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
                size = sum(f.nbytes for f in frames)
                if size > limits.max_message_bytes:
                    await self._too_large(frames[0], size)
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
        if head.nbytes >= _HEAD.size:
            _, _, mtype, _, _, session, _ = _HEAD.unpack_from(head)
            if mtype == _CLOSE:
                self.blocks.pop(session, None)
        self.in_flight.append(time.monotonic())
        # small messages are cheaper copied than wrapped in zero-copy frames
        await self.dealer.send_multipart(frames, copy=size < ZERO_COPY_BYTES)

    async def _too_large(self, head: memoryview, size: int) -> None:
        """A TOO_LARGE error echoing the request's ids, never forwarded to the broker."""
        self.counters.too_large += 1
        sequence = session = count = 0
        if head.nbytes >= _HEAD.size:
            _, _, _, _, sequence, session, count = _HEAD.unpack_from(head)
        text = f"message: expected at most {self.limits.max_message_bytes} bytes, got {size}"
        error = messages.error(
            ErrorCode.TOO_LARGE, text, sequence=sequence, session_id=session, session_count=count
        )
        await self._send(pack(encode(error)))

    async def _wait_for_room(self) -> None:
        """Until fewer than ``max_in_flight`` requests await replies (unanswered ones
        older than the request timeout no longer count)."""
        limits, in_flight = self.limits, self.in_flight
        while len(in_flight) >= limits.max_in_flight:
            expired = time.monotonic() - limits.request_timeout
            while in_flight and in_flight[0] < expired:
                in_flight.popleft()
            if len(in_flight) < limits.max_in_flight:
                return
            self.counters.in_flight_waits += 1
            self._replied.clear()
            try:
                await asyncio.wait_for(self._replied.wait(), limits.request_timeout)
            except TimeoutError:
                pass

    # ----------------------------------------------------------------- replies

    async def _replies(self) -> None:
        while True:
            frames = await self.dealer.recv_multipart(copy=False)
            if self.in_flight:
                self.in_flight.popleft()
                self._replied.set()
            head = frames[0].buffer
            if len(head) >= _HEAD.size:
                _, _, mtype, _, _, session, count = _HEAD.unpack_from(head)
                if mtype == _READY:
                    self.blocks[session] = count
            self.counters.replies += 1
            if not await self._send(pack(frames)):
                return

    async def _send(self, data: bytes) -> bool:
        """Write one message; a client that does not read for ``send_timeout`` is closed.

        A watchdog aborts the transport when the write is still waiting then: the
        waiting ``send`` ends with the connection, and its unread bytes are dropped."""
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
        log.warning("closing %s: it read no reply for %g s", self._peer(), self.limits.send_timeout)
        self.ws.transport.abort()

    async def _close_blocks(self) -> None:
        """Tell the broker that this connection's blocks are gone (their sessions free)."""
        for session, count in self.blocks.items():
            close = messages.simple(MessageType.CLOSE, session, count)
            try:
                await asyncio.wait_for(self.dealer.send_multipart(encode(close)), 1.0)
                self.counters.blocks_closed += 1
            except (TimeoutError, zmq.ZMQError):
                log.warning("%s: could not close block %d at the broker", self._peer(), session)
        self.blocks.clear()

    def _peer(self) -> str:
        address = self.ws.remote_address
        return f"{address[0]}:{address[1]}" if address else "?"
