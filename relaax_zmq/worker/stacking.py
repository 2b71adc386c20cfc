"""Batching a drain's updates for the agent, without sockets or state.

``act_steps`` groups the pending updates by observation shape[1:] and dtype,
stacks each group into one ``StepBatch`` (``stack``), acts on it in chunks of
at most ``max_batch`` rows and splits the actions back per update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relaax_zmq.core import StepBatch
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import Role
from relaax_zmq.protocol.message import Message
from relaax_zmq.worker.blocks import Block

#: ``Agent.act`` on one batch: its actions, or the exception it raised.
Act = Callable[[StepBatch], np.ndarray | Exception]


@dataclass(slots=True)
class Step:
    """One pending update of a block: where its reply goes and what it asked."""

    index: int
    block: Block
    message: Message
    restart: bool


def act_steps(
    act: Act, steps: Sequence[Step], max_batch: int | None
) -> list[tuple[Step, np.ndarray | Exception]]:
    """Each step with its actions, or the exception of a chunk it has rows in, group by group
    (by observation shape[1:] and dtype, in first-seen order): each group stacked into one
    batch, ``act`` called on chunks of at most ``max_batch`` rows (None: one call a group)."""
    groups: dict[Any, list[Step]] = {}
    for step in steps:
        state = step.message.tensors.get(Role.STATE)
        key = None if state is None else (state.shape[1:], state.dtype.str)
        groups.setdefault(key, []).append(step)
    results: list[tuple[Step, np.ndarray | Exception]] = []
    for same in groups.values():
        bounds = np.concatenate([[0], np.cumsum([s.block.count for s in same])]).tolist()
        rows = bounds[-1]
        batch = stack(same, rows)
        chunk = max_batch or rows
        outputs = []
        for start in range(0, rows, chunk):
            outputs.append(act(_rows(batch, start, min(start + chunk, rows))))
        for i, step in enumerate(same):
            first, last = bounds[i] // chunk, (bounds[i + 1] - 1) // chunk
            pieces = outputs[first : last + 1]
            failure = next((p for p in pieces if isinstance(p, Exception)), None)
            if failure is not None:
                results.append((step, failure))
                continue
            lo = bounds[i] - first * chunk
            joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)  # type: ignore[arg-type]
            results.append((step, joined[lo : lo + step.block.count]))  # type: ignore[index]
    return results


def stack(steps: Sequence[Step], rows: int) -> StepBatch:
    """The updates of one group as one ``StepBatch`` (copies: the agent may keep them).

    A restarted step's rewards are NaN: the agent sees the start of an episode.
    """
    rewards = np.full(rows, np.nan, np.float32)
    terminal = np.empty(rows, bool)
    truncated = np.empty(rows, bool)
    exploit = np.empty(rows, bool)
    ids = np.empty(rows, np.uint64)
    states = []
    row = 0
    for step in steps:
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


def _rows(batch: StepBatch, start: int, stop: int) -> StepBatch:
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
