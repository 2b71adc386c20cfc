"""The session host: a worker's blocks and its agent, without sockets.

``SessionHost.handle`` takes the decoded RLX requests of one drain and returns
one reply per request: every update is stacked into one ``StepBatch`` per
(observation shape[1:], dtype) group, so the agent runs one forward pass per
group (chunked to ``max_batch`` rows; ``stacking``) for all waiting sessions.
The worker feeds it from its link socket; an in-process client path uses
``open_block`` and ``handle_one``, which also answer init, close and heartbeat,
the broker's part, on the broker's own session table (``broker.sessions``).
One host serves one thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from relaax_zmq.broker.sessions import SessionTable, not_owned
from relaax_zmq.core import Agent, StepBatch
from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import SUPPORTED_VERSIONS, ErrorCode, Flag, MessageType
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal
from relaax_zmq.worker.blocks import Block, HostCounters, MetricsSink, MetricStat, Reply, Request
from relaax_zmq.worker.stacking import Step, act_steps

__all__ = ["Block", "HostCounters", "MetricStat", "MetricsSink", "Reply", "Request", "SessionHost"]

log = logging.getLogger(__name__)

#: The connection the in-process path's blocks belong to in the session table by default.
IN_PROCESS = b"in-process"


class SessionHost:
    """The blocks a worker hosts and the agent that acts for them (see the module docstring).

    Args:
        agent: the algorithm's agent; the host opens, closes and steps its sessions.
        limits: RLX limits for ``handle_frames`` (decode and encode).
        max_batch: most rows per ``Agent.act`` call; None: one call per group.
        metrics_sink: also called with every METRICS request's values.
    """

    def __init__(
        self,
        agent: Agent,
        limits: Limits = DEFAULT_LIMITS,
        *,
        max_batch: int | None = None,
        metrics_sink: MetricsSink | None = None,
    ) -> None:
        self.agent = agent
        self.limits = limits
        self.max_batch = max_batch
        self.metrics_sink = metrics_sink
        self.blocks: dict[int, Block] = {}
        #: the in-process path's blocks: their ids, owners and resumes, as the broker keeps them
        self.table = SessionTable()
        self.scalars: dict[str, MetricStat] = {}
        self.histograms: dict[str, MetricStat] = {}
        self.counters = HostCounters()

    # -- blocks -------------------------------------------------------------------------------

    @property
    def sessions(self) -> int:
        """Sessions hosted now (the sum of the blocks' sizes)."""
        return sum(b.count for b in self.blocks.values())

    def assign(
        self, session_id: int, count: int, *, exploit: bool = False, restart: bool = False
    ) -> Block:
        """Host the block ``session_id .. session_id + count - 1`` (broker ASSIGN).

        With ``restart`` the block's next reply carries RESTART. Assigning a
        live block again keeps its sessions when ``count`` matches.
        """
        if session_id <= 0 or count <= 0:
            raise ValueError(f"expected a block id > 0 and count > 0, got {session_id}x{count}")
        old = self.blocks.get(session_id)
        if old is not None and old.count == count and old.exploit == exploit:
            if restart:
                self._end_episodes(old)
                old.restart_pending = True
            return old
        if old is not None:
            self.release(session_id)
        block = Block(session_id, count, exploit, restart_pending=restart)
        self.agent.open_sessions(block.session_ids, exploit=exploit)
        self.blocks[session_id] = block
        return block

    def release(self, session_id: int) -> bool:
        """Forget a block (broker RELEASE, client close); False when it is not hosted."""
        self.table.remove(session_id)
        block = self.blocks.pop(session_id, None)
        if block is None:
            return False
        try:
            self.agent.close_sessions(block.session_ids)
        except Exception:
            log.exception("agent.close_sessions failed for block %d", session_id)
        return True

    def release_all(self) -> None:
        """Forget every block (the broker may have restarted)."""
        for session_id in list(self.blocks):
            self.release(session_id)

    def restart(self, session_id: int) -> bool:
        """End a block's episodes (broker RESTART: the client resumed); False when not hosted."""
        block = self.blocks.get(session_id)
        if block is None:
            return False
        try:
            self._end_episodes(block)
        except Exception:
            log.exception("agent.end_episodes failed for block %d", session_id)
        return True

    # -- the in-process path: the broker's part -----------------------------------------------

    def open_block(
        self, count: int = 1, *, exploit: bool = False, client: bytes = IN_PROCESS
    ) -> int:
        """In-process init: host a new block of ``client`` under an id from the session table
        (random, non-zero, 62-bit, overlapping no block of the table); return the id."""
        block = self.table.add(count, exploit, b"", client, time.monotonic())
        try:
            self.assign(block.id, count, exploit=exploit)
        except BaseException:
            self.table.remove(block.id)
            raise
        return block.id

    def handle_one(self, message: Message, client: bytes = IN_PROCESS) -> Message:
        """Answer one request of connection ``client`` in-process, the broker's part included.

        As the broker does: init opens a block (or resumes a live one, which
        ends its episodes) and answers ready; close releases the block and
        heartbeat is echoed, both answered UNKNOWN_SESSION when the block is not
        ``client``'s; the rest goes through ``handle``.
        """
        mtype = message.type
        if mtype == MessageType.INIT:
            return self._init(message, client)
        if mtype != MessageType.CLOSE and mtype != MessageType.HEARTBEAT:
            return self.handle([Request(None, message)])[0].message
        sid, count = message.session_id, message.session_count
        if sid:
            block = self.table.owned(sid, count, client)
            if block is None:
                return _error(message, ErrorCode.UNKNOWN_SESSION, not_owned(sid, count))
            if mtype == MessageType.CLOSE:
                self.release(sid)
            else:
                block.last_seen = time.monotonic()
        answer = MessageType.DONE if mtype == MessageType.CLOSE else MessageType.HEARTBEAT
        return messages.simple(answer, sid, count, sequence=message.sequence)

    def handle_frames(self, frames: Sequence[Any], client: bytes = IN_PROCESS) -> list[Any]:
        """``handle_one`` on encoded frames: decode, answer, encode (errors answered too)."""
        try:
            message = decode(frames, self.limits)
        except ProtocolError as exc:
            reply = refusal(exc, frames, self.limits)
        else:
            reply = self.handle_one(message, client)
        return encode(reply, self.limits)

    def _init(self, message: Message, client: bytes) -> Message:
        block = self.table.resumable(message.session_id, message.session_count)
        if block is not None:
            self.table.rebind(block, client, time.monotonic())
            self.restart(block.id)
            session_id, exploit = block.id, block.exploit
        else:
            exploit = bool(message.flags & Flag.EXPLOIT)
            session_id = self.open_block(message.session_count, exploit=exploit, client=client)
        return messages.ready(
            session_id,
            message.session_count,
            exploit=exploit,
            sequence=message.sequence,
            versions=SUPPORTED_VERSIONS,
        )

    # -- requests -----------------------------------------------------------------------------

    def handle(self, requests: Sequence[Request]) -> list[Reply]:
        """One reply per request, in request order (see the module docstring).

        Requests are applied in order: a second update of a block, or a reset
        of a block with an update pending, first runs the pending updates. A
        block assigned with ``restart`` gets RESTART on every reply of its
        first call (the broker resends all its in-flight requests together).
        """
        replies: list[Message | None] = [None] * len(requests)
        pending: list[Step] = []
        pending_blocks: set[int] = set()
        restarting: set[int] = set()
        self.counters.requests += len(requests)
        for index, (_, message) in enumerate(requests):
            block, refused = self._lookup(message)
            if refused is not None:
                replies[index] = refused
                continue
            assert block is not None
            if message.type == MessageType.UPDATE:
                if block.session_id in pending_blocks:
                    self._run_steps(pending, replies)
                    pending, pending_blocks = [], set()
                restart = self._take_restart(block, restarting)
                pending.append(Step(index, block, message, restart))
                pending_blocks.add(block.session_id)
            elif message.type == MessageType.RESET:
                if block.session_id in pending_blocks:
                    self._run_steps(pending, replies)
                    pending, pending_blocks = [], set()
                replies[index] = self._reset(block, message, self._take_restart(block, restarting))
            else:
                replies[index] = self._metrics(
                    block, message, self._take_restart(block, restarting)
                )
        self._run_steps(pending, replies)
        out = []
        for (key, _), reply in zip(requests, replies, strict=True):
            assert reply is not None
            if reply.type == MessageType.ERROR:
                self.counters.errors += 1
            out.append(Reply(key, reply))
        return out

    # -- status -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Numbers for heartbeats and status: blocks, sessions, counters and the agent's stats."""
        agent: dict[str, float] = {}
        try:
            for name, value in self.agent.stats().items():
                number = float(value)
                if np.isfinite(number):
                    agent[str(name)] = number
        except Exception:
            log.exception("agent.stats failed")
        return {
            "blocks": len(self.blocks),
            "sessions": self.sessions,
            **asdict(self.counters),
            "agent": agent,
        }

    # -- internals ----------------------------------------------------------------------------

    def _lookup(self, message: Message) -> tuple[Block | None, Message | None]:
        """The block a request is about, or the error reply that refuses it."""
        if message.type not in (MessageType.UPDATE, MessageType.RESET, MessageType.METRICS):
            return None, _error(message, ErrorCode.UNKNOWN_TYPE, _not_handled(message))
        block = self.blocks.get(message.session_id)
        if block is None:
            text = f"session {message.session_id} is not hosted here"
            return None, _error(message, ErrorCode.UNKNOWN_SESSION, text)
        if message.session_count != block.count:
            text = (
                f"header.session_count: expected {block.count} (the block's size), "
                f"got {message.session_count}"
            )
            return None, _error(message, ErrorCode.MALFORMED, text)
        return block, None

    def _take_restart(self, block: Block, restarting: set[int]) -> bool:
        """Whether this request's reply carries RESTART (and its step starts an episode)."""
        if block.restart_pending:
            block.restart_pending = False
            restarting.add(block.session_id)
            self.counters.restarts += 1
        return block.session_id in restarting

    def _end_episodes(self, block: Block) -> None:
        self.agent.end_episodes(block.session_ids)

    def _reset(self, block: Block, message: Message, restart: bool) -> Message:
        try:
            self._end_episodes(block)
        except Exception as exc:
            log.exception("agent.end_episodes failed for block %d", block.session_id)
            return self._agent_failure(message, exc, restart)
        return _done(block, message, restart)

    def _metrics(self, block: Block, message: Message, restart: bool) -> Message:
        try:
            scalars, histograms = messages.read_metrics(message)
        except ProtocolError as exc:
            return _error(message, ErrorCode.MALFORMED, str(exc), restart=restart)
        for name, value in scalars.items():
            _record(self.scalars, name, value)
        for name, values in histograms.items():
            _record(self.histograms, name, np.array(values))
        if self.metrics_sink is not None:
            try:
                self.metrics_sink(block.session_id, scalars, histograms)
            except Exception:
                log.exception("metrics sink failed")
        return _done(block, message, restart)

    def _run_steps(self, steps: list[Step], replies: list[Message | None]) -> None:
        """Act for every pending update: one stacked batch per group, replies filled in."""
        if not steps:
            return
        restarted: list[Block] = []
        for step, outcome in act_steps(self._act, steps, self.max_batch):
            msg, restart = step.message, step.restart
            if isinstance(outcome, Exception):
                replies[step.index] = self._agent_failure(msg, outcome, restart)
            else:
                replies[step.index] = messages.action(
                    step.block.session_id, outcome, sequence=msg.sequence, restart=restart
                )
            if restart:
                restarted.append(step.block)
        for block in restarted:
            # the client drops the episode this step started: the agent ends it now
            try:
                self._end_episodes(block)
            except Exception:
                log.exception("agent.end_episodes failed for block %d", block.session_id)

    def _act(self, batch: StepBatch) -> np.ndarray | Exception:
        """``Agent.act`` on one batch; its actions, or the exception it raised (logged)."""
        try:
            actions = np.asarray(self.agent.act(batch))
            if actions.ndim == 0 or actions.shape[0] != len(batch):
                raise RuntimeError(
                    f"agent.act returned actions of shape {actions.shape} for {len(batch)} sessions"
                )
        except ValueError as exc:
            log.debug("agent refused a batch of %d: %s", len(batch), exc)
            return exc
        except Exception as exc:
            log.exception("agent.act failed on a batch of %d sessions", len(batch))
            return exc
        self.counters.batches += 1
        self.counters.steps += len(batch)
        return actions

    def _agent_failure(self, message: Message, exc: BaseException, restart: bool) -> Message:
        """ValueError: the request's fault (MALFORMED); anything else: INTERNAL."""
        if isinstance(exc, ValueError):
            return _error(message, ErrorCode.MALFORMED, str(exc), restart=restart)
        return _error(message, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", restart=restart)


def _done(block: Block, message: Message, restart: bool) -> Message:
    """The done reply to a reset or metrics request of ``block``."""
    return messages.simple(
        MessageType.DONE, block.session_id, block.count, sequence=message.sequence, restart=restart
    )


def _record(table: dict[str, MetricStat], name: str, value: Any) -> None:
    stat = table.get(name)
    if stat is None:
        table[name] = MetricStat(value, 1)
    else:
        stat.last = value
        stat.count += 1


def _error(message: Message, code: ErrorCode, text: str, *, restart: bool = False) -> Message:
    return messages.error(
        code,
        text,
        sequence=message.sequence,
        session_id=message.session_id,
        session_count=message.session_count,
        restart=restart,
    )


def _not_handled(message: Message) -> str:
    from relaax_zmq.protocol.constants import type_name

    return f"header.type: expected update, reset or metrics, got {type_name(message.type)}"
