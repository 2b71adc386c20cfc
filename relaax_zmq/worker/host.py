"""The session host: a worker's blocks and its agent, without sockets.

``SessionHost.handle`` takes the decoded RLX requests of one drain and returns
one reply per request: every update is stacked into one ``StepBatch`` per
(observation shape[1:], dtype) group, so the agent runs one forward pass per
group (chunked to ``max_batch`` rows) for all waiting sessions. The worker
feeds it from its link socket; an in-process client path uses ``open_block``
and ``handle_one`` (which also answers init, close and heartbeat, the broker's
part). One host serves one thread.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from relaax_zmq.agent import Agent, StepBatch
from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import (
    SUPPORTED_VERSIONS,
    ErrorCode,
    Flag,
    MessageType,
    Role,
)
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.protocol.message import Message
from relaax_zmq.protocol.refusal import refusal

log = logging.getLogger(__name__)

#: Called with (session_id, scalars, histograms) for every METRICS request.
MetricsSink = Callable[[int, dict[str, float], dict[str, np.ndarray]], None]


class Request(NamedTuple):
    """A decoded RLX request and an opaque routing key handed back with its reply."""

    key: Any
    message: Message


class Reply(NamedTuple):
    """The reply to the request with the same ``key``."""

    key: Any
    message: Message


@dataclass
class Block:
    """A block of ``count`` sessions: ids ``session_id .. session_id + count - 1``."""

    session_id: int
    count: int
    exploit: bool = False
    #: the replies of the block's next drain carry RESTART (re-homed with ``restart``)
    restart_pending: bool = False

    @property
    def session_ids(self) -> np.ndarray:
        return np.arange(self.session_id, self.session_id + self.count, dtype=np.uint64)


@dataclass
class MetricStat:
    """The latest value a metric name reported and how many times it was reported."""

    last: Any
    count: int = 0


@dataclass
class _Step:
    """One pending update: where its reply goes and what it asked."""

    index: int
    block: Block
    message: Message
    restart: bool


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
        self.scalars: dict[str, MetricStat] = {}
        self.histograms: dict[str, MetricStat] = {}
        self.counters: dict[str, int] = {
            "requests": 0,
            "batches": 0,
            "steps": 0,
            "errors": 0,
            "restarts": 0,
        }

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

    def open_block(self, count: int = 1, *, exploit: bool = False) -> int:
        """In-process init: host a new block under a random non-zero 62-bit id; return the id."""
        while True:
            session_id = secrets.randbits(62)
            if session_id and not self._overlaps(session_id, count):
                self.assign(session_id, count, exploit=exploit)
                return session_id

    # -- requests -----------------------------------------------------------------------------

    def handle_one(self, message: Message) -> Message:
        """Answer one request in-process, the broker's part included.

        init opens (or resumes) a block and answers ready, close releases it,
        heartbeat is echoed; the rest goes through ``handle``.
        """
        if message.type == MessageType.INIT:
            return self._init(message)
        if message.type == MessageType.CLOSE:
            self.release(message.session_id)
            return messages.simple(
                MessageType.DONE,
                message.session_id,
                message.session_count,
                sequence=message.sequence,
            )
        if message.type == MessageType.HEARTBEAT:
            return messages.simple(
                MessageType.HEARTBEAT,
                message.session_id,
                message.session_count,
                sequence=message.sequence,
            )
        return self.handle([Request(None, message)])[0].message

    def handle_frames(self, frames: Sequence[Any]) -> list[Any]:
        """``handle_one`` on encoded frames: decode, answer, encode (errors answered too)."""
        from relaax_zmq.protocol import decode, encode

        try:
            message = decode(frames, self.limits)
        except ProtocolError as exc:
            reply = refusal(exc, frames, self.limits)
        else:
            reply = self.handle_one(message)
        return encode(reply, self.limits)

    def handle(self, requests: Sequence[Request]) -> list[Reply]:
        """One reply per request, in request order (see the module docstring).

        Requests are applied in order: a second update of a block, or a reset
        of a block with an update pending, first runs the pending updates. A
        block assigned with ``restart`` gets RESTART on every reply of its
        first call (the broker resends all its in-flight requests together).
        """
        replies: list[Message | None] = [None] * len(requests)
        pending: list[_Step] = []
        pending_blocks: set[int] = set()
        restarting: set[int] = set()
        self.counters["requests"] += len(requests)
        for index, (_, message) in enumerate(requests):
            block, refusal = self._lookup(message)
            if refusal is not None:
                replies[index] = refusal
                continue
            assert block is not None
            if message.type == MessageType.UPDATE:
                if block.session_id in pending_blocks:
                    self._run_steps(pending, replies)
                    pending, pending_blocks = [], set()
                pending.append(_Step(index, block, message, self._take_restart(block, restarting)))
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
                self.counters["errors"] += 1
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
            **self.counters,
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
            self.counters["restarts"] += 1
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

    def _run_steps(self, steps: list[_Step], replies: list[Message | None]) -> None:
        """Act for every pending update: one stacked batch per group, replies filled in."""
        if not steps:
            return
        groups: dict[Any, list[_Step]] = {}
        for step in steps:
            state = step.message.tensors.get(Role.STATE)
            key = None if state is None else (state.shape[1:], state.dtype.str)
            groups.setdefault(key, []).append(step)
        restarted: list[Block] = []
        for group in groups.values():
            self._act_group(group, replies)
            restarted.extend(s.block for s in group if s.restart)
        for block in restarted:
            # the client drops the episode this step started: the agent ends it now
            try:
                self._end_episodes(block)
            except Exception:
                log.exception("agent.end_episodes failed for block %d", block.session_id)

    def _act_group(self, group: list[_Step], replies: list[Message | None]) -> None:
        counts = [s.block.count for s in group]
        bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
        rows = bounds[-1]
        batch = _stack(group, rows)
        chunk = self.max_batch or rows
        outputs: list[np.ndarray | Exception] = []
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            outputs.append(self._act(_slice(batch, start, stop)))
        for i, step in enumerate(group):
            first, last = bounds[i] // chunk, (bounds[i + 1] - 1) // chunk
            pieces = outputs[first : last + 1]
            failure = next((p for p in pieces if isinstance(p, Exception)), None)
            if failure is not None:
                replies[step.index] = self._agent_failure(step.message, failure, step.restart)
                continue
            lo = bounds[i] - first * chunk
            joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)  # type: ignore[arg-type]
            actions = joined[lo : lo + step.block.count]
            replies[step.index] = messages.action(
                step.block.session_id, actions, sequence=step.message.sequence, restart=step.restart
            )

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
        self.counters["batches"] += 1
        self.counters["steps"] += len(batch)
        return actions

    def _agent_failure(self, message: Message, exc: BaseException, restart: bool) -> Message:
        """ValueError: the request's fault (MALFORMED); anything else: INTERNAL."""
        if isinstance(exc, ValueError):
            return _error(message, ErrorCode.MALFORMED, str(exc), restart=restart)
        return _error(message, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", restart=restart)

    def _init(self, message: Message) -> Message:
        exploit = bool(message.flags & Flag.EXPLOIT)
        block = self.blocks.get(message.session_id) if message.session_id else None
        if block is not None and block.count == message.session_count:
            self.restart(block.session_id)
            session_id = block.session_id
            exploit = block.exploit
        else:
            session_id = self.open_block(message.session_count, exploit=exploit)
        return messages.ready(
            session_id,
            message.session_count,
            exploit=exploit,
            sequence=message.sequence,
            versions=SUPPORTED_VERSIONS,
        )

    def _overlaps(self, session_id: int, count: int) -> bool:
        end = session_id + count
        return any(
            session_id < b.session_id + b.count and b.session_id < end for b in self.blocks.values()
        )


def _done(block: Block, message: Message, restart: bool) -> Message:
    """The done reply to a reset or metrics request of ``block``."""
    return messages.simple(
        MessageType.DONE, block.session_id, block.count, sequence=message.sequence, restart=restart
    )


def _stack(group: list[_Step], rows: int) -> StepBatch:
    """The updates of one group as one ``StepBatch`` (copies: the agent may keep them)."""
    rewards = np.full(rows, np.nan, np.float32)
    terminal = np.empty(rows, bool)
    truncated = np.empty(rows, bool)
    exploit = np.empty(rows, bool)
    ids = np.empty(rows, np.uint64)
    states = []
    row = 0
    for step in group:
        msg, n = step.message, step.block.count
        reward = msg.tensors.get(Role.REWARD)
        if reward is not None and not step.restart:
            rewards[row : row + n] = reward
        terminal[row : row + n], truncated[row : row + n] = messages.read_episode_ends(msg)
        exploit[row : row + n] = step.block.exploit
        ids[row : row + n] = step.block.session_ids
        state = msg.tensors.get(Role.STATE)
        if state is not None:
            states.append(state)
        row += n
    stacked = np.concatenate(states) if states else None
    return StepBatch(ids, rewards, stacked, terminal, truncated, exploit)


def _slice(batch: StepBatch, start: int, stop: int) -> StepBatch:
    if start == 0 and stop == len(batch):
        return batch
    states = None if batch.states is None else batch.states[start:stop]
    return StepBatch(
        batch.session_ids[start:stop],
        batch.rewards[start:stop],
        states,
        batch.terminal[start:stop],
        batch.truncated[start:stop],
        batch.exploit[start:stop],
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
