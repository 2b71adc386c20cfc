"""A block of N sessions on the exchange: what every client proxy shares.

``BlockProxy`` owns the connection, the block's ids, the metrics buffer and the
rules of docs/exchange.md ("Clients"):

- every ERROR reply raises ``AgentError(code, server text)``;
- a reply with the RESTART flag raises ``EpisodeRestart``; an error with RESTART
  (the block was forgotten, e.g. BUSY + RESTART) or ``UNKNOWN_SESSION`` first
  opens a new block, then raises ``EpisodeRestart``;
- a BUSY init (or an init without reply) is retried with jittered backoff until
  ``retry_deadline``, then its error is raised;
- a request without reply reopens the socket, resumes the block (``init`` with
  its session id) and raises ``EpisodeRestart``.

After ``EpisodeRestart`` the caller resets its environments; the next update
starts new episodes (no reward). ``AgentProxy`` (N = 1) and
``VectorAgentProxy`` (N environments) only shape arrays in and out.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np
import zmq
from numpy.typing import ArrayLike

from relaax_zmq.client.backoff import Backoff
from relaax_zmq.client.connection import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Connection,
    RequestTimeout,
    client_spec,
)
from relaax_zmq.client.metrics import MetricsBuffer
from relaax_zmq.client.websocket import WebSocketConnection, is_websocket_url
from relaax_zmq.errors import AgentError, EpisodeRestart, ProtocolError
from relaax_zmq.metrics.names import ACTION_LATENCY_CLIENT_MS
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import ErrorCode, Flag, MessageType, Role, type_name
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.security import CurveSpec

if TYPE_CHECKING:
    from relaax_zmq.client.inprocess import InProcessConnection

log = logging.getLogger("relaax_zmq.client")

_Proxy = TypeVar("_Proxy", bound="BlockProxy")

#: Seconds a disconnect leaves its close message to get out.
CLOSE_LINGER = 1.0
_RESTART = int(Flag.RESTART)  # a plain int: IntFlag arithmetic costs microseconds per reply


def config_options(config: Any) -> dict[str, Any]:
    """Constructor options of a proxy from an ``AppConfig`` (broker section, socket map)."""
    from relaax_zmq.runtime.sockets import socket_map

    spec = socket_map(config)["client.frontend"]
    broker = config.broker
    return {
        "endpoint": spec.endpoint,
        "request_timeout": broker.client_request_timeout,
        "backoff_initial": broker.retry_backoff_initial,
        "backoff_max": broker.retry_backoff_max,
        "max_message_bytes": spec.max_message_bytes,
        "limits": config.protocol.limits(),
        "curve": spec.curve,
    }


class BlockProxy:
    """Client of one block of ``n`` sessions (see the module docstring).

    Args:
        endpoint: the broker's frontend (``broker.frontend``), or the gateway's URL
            (``ws://host:7800/rlx``, ``wss://...``: ``websocket.WebSocketConnection``).
        n: sessions in the block.
        request_timeout: seconds to wait for a reply before reconnecting.
        backoff_initial, backoff_max: retry delays of a refused (BUSY) init.
        retry_deadline: seconds an init keeps retrying before it gives up.
        context: ZeroMQ context (default: the process-wide one).
        max_message_bytes: ``MAXMSGSIZE`` of the socket.
        limits: decoder limits of replies.
        curve: CURVE keys of the socket (``security.curve``); None: plaintext.
        backoff: a ready ``Backoff`` (tests inject one with a fake rng and sleep).
        connection: a ready channel instead of a socket to ``endpoint`` (the
            in-process path, ``relaax_zmq.client.inprocess``).
        token: the gateway's access token (``gateway.token``; WebSocket URLs only).
    """

    def __init__(
        self,
        endpoint: str,
        n: int,
        *,
        request_timeout: float = 10.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        retry_deadline: float = 60.0,
        context: zmq.Context | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        limits: Limits = DEFAULT_LIMITS,
        curve: CurveSpec | None = None,
        backoff: Backoff | None = None,
        connection: Connection | InProcessConnection | WebSocketConnection | None = None,
        token: str | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"a block has at least one session, got {n}")
        self.n = n
        self.retry_deadline = retry_deadline
        if connection is None and is_websocket_url(endpoint):
            connection = WebSocketConnection(
                endpoint,
                token=token,
                timeout=request_timeout,
                limits=limits,
                max_message_bytes=max_message_bytes,
            )
        self.connection = connection or Connection(
            client_spec(endpoint, max_message_bytes, curve),
            timeout=request_timeout,
            context=context,
            limits=limits,
        )
        self.backoff = backoff if backoff is not None else Backoff(backoff_initial, backoff_max)
        self.metrics = MetricsBuffer(self._send_metrics)
        self.restarts = 0  #: EpisodeRestart raised so far
        self._session_id: int | None = None
        self._exploit = False

    # -- public API --------------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        """First session id of the block, None before ``init``."""
        return self._session_id

    @property
    def exploit(self) -> bool:
        return self._exploit

    def connect(self) -> None:
        """Open the socket (``init`` does it when needed)."""
        self.connection.open()

    def init(self, exploit: bool = False) -> int:
        """Ask for a new block; returns its first session id. BUSY is retried (module doc).

        A block this proxy already holds is closed first (without waiting).
        """
        if self._session_id is not None:
            self._send_close()
        self._exploit = exploit
        return self._open_block(0)

    def heartbeat(self) -> None:
        """Tell the broker the block is alive (during long pauses between steps)."""
        self._call(
            lambda sid: messages.simple(MessageType.HEARTBEAT, sid, self.n), MessageType.HEARTBEAT
        )

    def reset(self) -> None:
        """Flush the metrics and end the block's episodes.

        Never raises ``EpisodeRestart``: the episodes end either way.
        """
        with contextlib.suppress(EpisodeRestart):
            self.metrics.flush()
            self._call(
                lambda sid: messages.simple(MessageType.RESET, sid, self.n), MessageType.DONE
            )

    def disconnect(self) -> None:
        """Send what metrics wait and ``close`` without waiting for replies; close the socket."""
        if self.connection.is_open and self._session_id is not None:
            if self.metrics:
                scalars, histograms = self.metrics.take()
                self._send_quietly(
                    messages.metrics(self._session_id, scalars, histograms, session_count=self.n)
                )
            self._send_close()
        self._session_id = None
        self.connection.close(CLOSE_LINGER)

    def __enter__(self: _Proxy) -> _Proxy:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- shared by the subclasses ------------------------------------------------------------

    def _update(
        self, reward: np.ndarray | None, state: np.ndarray | None, ends: int | np.ndarray
    ) -> np.ndarray:
        """One step of every session; returns the actions (n, ...).

        ``reward`` comes from ``_rewards``, ``state`` is (n, ...); ``ends`` is either
        header flags (TERMINAL/TRUNCATED, the same for every session) or an
        episode_flags array of n (``messages.episode_flags``). Nothing is converted
        again on the way to the codec.
        """
        tensors: dict[int, np.ndarray] = {}
        if reward is not None:
            tensors[Role.REWARD] = reward
        if state is not None:
            tensors[Role.STATE] = state
        if isinstance(ends, int):
            flags, ended = ends, ends != 0
        else:
            tensors[Role.EPISODE_FLAGS] = ends
            flags, ended = 0, bool(ends.any())
        started = time.perf_counter()
        reply = self._call(
            lambda sid: Message(
                MessageType.UPDATE,
                flags=flags,
                session_id=sid,
                session_count=self.n,
                tensors=tensors,
            ),
            MessageType.ACTION,
        )
        self.metrics.mean(ACTION_LATENCY_CLIENT_MS, (time.perf_counter() - started) * 1000.0)
        actions = reply.tensors[Role.ACTION]
        if actions.shape[0] != self.n:
            raise ProtocolError("action", f"{self.n} actions", f"shape {actions.shape}")
        if ended:
            self.metrics.flush()
        return actions

    def _rewards(self, reward: ArrayLike | None) -> np.ndarray | None:
        """(n,) rewards in wire form (``messages.rewards``), or None."""
        if reward is None:
            return None
        arr = messages.rewards(reward)
        if arr.size != self.n:
            raise ValueError(f"expected {self.n} rewards, got shape {arr.shape}")
        return arr.reshape(self.n)

    # -- internals ---------------------------------------------------------------------------

    def _send_close(self) -> None:
        """Release the block without waiting for the reply."""
        assert self._session_id is not None
        self._send_quietly(messages.simple(MessageType.CLOSE, self._session_id, self.n))
        self._session_id = None

    def _send_quietly(self, message: Message) -> None:
        try:
            self.connection.send(message)
        except (RequestTimeout, zmq.ZMQError) as exc:
            log.warning("could not send %s: %s", type_name(message.type), exc)

    def _send_metrics(self, scalars: Mapping[str, float], histograms: Mapping[str, Any]) -> None:
        self._call(
            lambda sid: messages.metrics(sid, scalars, histograms, session_count=self.n),
            MessageType.DONE,
        )

    def _call(self, build: Callable[[int], Message], expect: MessageType) -> Message:
        """One request of the block, with the error/restart/timeout rules applied."""
        if self._session_id is None:
            self.init(self._exploit)
        assert self._session_id is not None
        try:
            reply = self.connection.request(build(self._session_id))
        except RequestTimeout as exc:
            self._restart(str(exc), resume=True)
        if reply.type == MessageType.ERROR:
            code, text, _ = messages.read_error(reply)
            if code == ErrorCode.UNKNOWN_SESSION or reply.flags & _RESTART:
                self._restart(str(AgentError(code, text)), resume=False)
            raise AgentError(code, text)
        if reply.flags & _RESTART:
            self.restarts += 1
            raise EpisodeRestart("the server restarted the block's episodes")
        if reply.type != expect:
            raise ProtocolError("reply.type", type_name(expect), type_name(reply.type))
        return reply

    def _restart(self, reason: str, *, resume: bool) -> NoReturn:
        """Resume the block (or open a new one), then raise EpisodeRestart."""
        old = self._session_id
        log.warning(
            "block %s: %s; %s", old, reason, "resuming it" if resume else "opening a new one"
        )
        self._session_id = None
        self._open_block(old if resume and old is not None else 0)
        self.restarts += 1
        raise EpisodeRestart(reason)

    def _open_block(self, session_id: int) -> int:
        """init (new block for 0, else resume), retrying BUSY and timeouts until the deadline."""
        deadline = time.monotonic() + self.retry_deadline
        self.backoff.reset()
        while True:
            init = messages.init(self.n, exploit=self._exploit, session_id=session_id)
            try:
                reply = self.connection.request(init)
            except RequestTimeout as exc:
                failure: AgentError = exc
            else:
                if reply.type == MessageType.READY:
                    return self._granted(reply)
                if reply.type != MessageType.ERROR:
                    raise ProtocolError("reply.type", "ready or error", type_name(reply.type))
                code, text, _ = messages.read_error(reply)
                failure = AgentError(code, text)
                if code != ErrorCode.BUSY:
                    raise failure
            left = deadline - time.monotonic()
            if left <= 0:
                raise failure
            delay = self.backoff.wait(left)
            log.info("init: %s; retried after %.3f s", failure, delay)

    def _granted(self, reply: Message) -> int:
        if reply.session_count != self.n or reply.session_id == 0:
            raise ProtocolError(
                "ready",
                f"a block of {self.n} sessions",
                f"{reply.session_id}x{reply.session_count}",
            )
        self._session_id = reply.session_id
        log.debug("block %d x %d ready", reply.session_id, reply.session_count)
        return reply.session_id
