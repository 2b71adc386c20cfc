"""A fake RLX server for client tests: a raw ROUTER in a thread.

Client and env tests use it through the ``server`` fixture (tests/conftest.py)
and the ``agent`` helper below. Its default behaviour is a
tiny broker + agent: init -> ready (new ids, or the same block on resume),
update -> action (``action_fn``), reset/metrics/close -> done. ``handler``
overrides it per message: return a Message, a list of them (sent in order),
or None for no reply; ``server.default(identity, message)`` is the default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import zmq

from relaax_zmq.client import AgentProxy
from relaax_zmq.protocol import Message, MessageType, decode, encode, messages

Handler = Callable[[bytes, Message], "Message | list[Message] | None"]


def zero_actions(message: Message) -> np.ndarray:
    return np.zeros(message.session_count, np.int64)


class FakeServer:
    """A ROUTER on a random loopback port answering RLX requests from a thread."""

    def __init__(
        self,
        handler: Handler | None = None,
        action_fn: Callable[[Message], np.ndarray] = zero_actions,
    ) -> None:
        self.handler = handler
        self.action_fn = action_fn
        self.received: list[tuple[bytes, Message]] = []
        self.blocks: dict[int, int] = {}  # session_id -> count
        self._next_id = 1000
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.endpoint = ""
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "fake server did not start"

    # -- behaviour ------------------------------------------------------------------------

    def default(self, identity: bytes, msg: Message) -> Message | None:
        if msg.type == MessageType.INIT:
            sid = msg.session_id
            if not sid or self.blocks.get(sid) != msg.session_count:
                sid = self.new_id(msg.session_count)
            return messages.ready(sid, msg.session_count, exploit=bool(msg.flags & 1))
        if msg.type == MessageType.UPDATE:
            return messages.action(msg.session_id, self.action_fn(msg))
        if msg.type in (MessageType.RESET, MessageType.METRICS, MessageType.CLOSE):
            return messages.simple(MessageType.DONE, msg.session_id, msg.session_count)
        if msg.type == MessageType.HEARTBEAT:
            return messages.simple(MessageType.HEARTBEAT, 0, 0)
        return messages.error(3, "unknown type")

    def new_id(self, count: int) -> int:
        sid = self._next_id
        self._next_id += 1000
        self.blocks[sid] = count
        return sid

    # -- inspection -----------------------------------------------------------------------

    def messages(self, message_type: int | None = None) -> list[Message]:
        with self._lock:
            return [m for _, m in self.received if message_type is None or m.type == message_type]

    def identities(self, message_type: int | None = None) -> list[bytes]:
        with self._lock:
            return [i for i, m in self.received if message_type is None or m.type == message_type]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return predicate()

    # -- plumbing -------------------------------------------------------------------------

    def _loop(self) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(20):
                    continue
                frames = sock.recv_multipart()
                identity, msg = frames[0], decode(frames[1:])
                with self._lock:
                    self.received.append((identity, msg))
                handler = self.handler or self.default
                replies = handler(identity, msg)
                if replies is None:
                    continue
                for reply in replies if isinstance(replies, list) else [replies]:
                    if reply.sequence == 0:
                        reply.sequence = msg.sequence
                    sock.send_multipart([identity, *encode(reply)])
        finally:
            sock.close(0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def agent(server: FakeServer) -> AgentProxy:
    """A proxy to ``server`` with short timeouts."""
    return AgentProxy(server.endpoint, request_timeout=2.0, retry_deadline=2.0)
