"""Per-session experience from ``StepBatch`` rows: transitions, cut into segments.

A worker's agent sees every session one step at a time, interleaved with other
sessions. The reward for an action arrives with the session's *next* update, and
an ended episode (terminal or truncated) is followed by the next episode's first
observation with a NaN reward (docs/exchange.md, "Episode boundaries"). The
``Recorder`` turns that into ``Segment``s: consecutive transitions of one session
and one episode, cut when ``segment_length`` transitions are waiting or the episode
ends, with what is needed to bootstrap the last one.

Use, once per ``Agent.act``::

    segments = recorder.step(batch, observations)  # closes transitions, returns cut segments
    ... compute actions (and per-row extras such as log-probabilities, values) ...
    recorder.act(batch, observations, actions, extras)  # remembers them, waiting for rewards
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from relaax_zmq.core import StepBatch


@dataclass
class Segment:
    """Consecutive transitions of one session within one episode.

    Attributes:
        session_id: whose.
        states: (T, *obs) observations acted on (as the agent saw them).
        actions: (T, *action).
        rewards: (T,) float32, the reward each action brought.
        extras: per-step arrays the agent stored with its actions, (T, ...) each.
        terminal: the last transition ended the episode by termination (value 0 after it).
        truncated: the last transition ended the episode by truncation (bootstrap).
        next_state: the observation after the last transition: the one to bootstrap
            from (after a truncation: the final observation); None after termination.
    """

    session_id: int
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    extras: dict[str, np.ndarray]
    terminal: bool
    truncated: bool
    next_state: np.ndarray | None

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def episode_ended(self) -> bool:
        return self.terminal or self.truncated


@dataclass
class _Trajectory:
    exploit: bool
    pending: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None = None
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    extras: list[dict[str, np.ndarray]] = field(default_factory=list)

    def clear(self) -> None:
        self.pending = None
        self.states, self.actions, self.rewards, self.extras = [], [], [], []

    def cut(self, sid: int, terminal: bool, truncated: bool, next_state: np.ndarray | None):
        extras = {k: np.stack([e[k] for e in self.extras]) for k in self.extras[0]}
        segment = Segment(
            session_id=sid,
            states=np.stack(self.states),
            actions=np.stack(self.actions),
            rewards=np.asarray(self.rewards, np.float32),
            extras=extras,
            terminal=terminal,
            truncated=truncated and not terminal,
            next_state=None if terminal else next_state,
        )
        self.states, self.actions, self.rewards, self.extras = [], [], [], []
        return segment


class Recorder:
    """Training sessions' transitions, cut into ``Segment``s (see the module docstring).

    Args:
        segment_length: cut a segment when this many transitions wait (n-step methods,
            rollouts); None: only at episode ends (whole episodes).
        max_episode_length: with ``segment_length`` None, an episode this long is cut
            anyway (memory stays bounded; the cut bootstraps like a truncation would).
    """

    def __init__(
        self, segment_length: int | None = None, *, max_episode_length: int = 100_000
    ) -> None:
        if segment_length is not None and segment_length < 1:
            raise ValueError(f"segment_length: expected >= 1 or None, got {segment_length}")
        self.segment_length = segment_length or max_episode_length
        self.sessions: dict[int, _Trajectory] = {}

    # -- sessions -----------------------------------------------------------------------------

    def open(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        for sid in session_ids.tolist():
            self.sessions[sid] = _Trajectory(exploit)

    def close(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            self.sessions.pop(sid, None)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        """Episodes ended without a terminal update (a client reset): drop what they hold."""
        for sid in session_ids.tolist():
            trajectory = self.sessions.get(sid)
            if trajectory is not None:
                trajectory.clear()

    def exploit_mask(self, batch: StepBatch) -> np.ndarray:
        """(B,) True for the rows of exploit sessions (they act greedily, learn nothing)."""
        return np.fromiter(
            (
                self._trajectory(sid, bool(e)).exploit
                for sid, e in zip(batch.session_ids.tolist(), batch.exploit.tolist(), strict=True)
            ),
            bool,
            len(batch),
        )

    # -- steps --------------------------------------------------------------------------------

    def step(self, batch: StepBatch, states: np.ndarray) -> list[Segment]:
        """Give each session's waiting action its reward; the segments this cuts.

        ``states``: the batch's observations as the agent sees them (normalised ...),
        (B, *obs). A NaN reward starts a new episode: whatever was in progress is dropped.
        """
        cut: list[Segment] = []
        ended = batch.terminal | batch.truncated
        for row, sid in enumerate(batch.session_ids.tolist()):
            trajectory = self._trajectory(sid, bool(batch.exploit[row]))
            if trajectory.exploit:
                continue
            reward = float(batch.rewards[row])
            if math.isnan(reward):
                trajectory.clear()
            elif trajectory.pending is not None:
                state, action, extras = trajectory.pending
                trajectory.states.append(state)
                trajectory.actions.append(action)
                trajectory.rewards.append(reward)
                trajectory.extras.append(extras)
            trajectory.pending = None
            length = len(trajectory.rewards)
            if length and (ended[row] or length >= self.segment_length):
                terminal, truncated = bool(batch.terminal[row]), bool(batch.truncated[row])
                cut.append(trajectory.cut(sid, terminal, truncated, states[row].copy()))
        return cut

    def act(
        self,
        batch: StepBatch,
        states: np.ndarray,
        actions: np.ndarray,
        extras: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Remember each training row's action (and extras), waiting for its reward.

        Rows of exploit sessions and rows that end an episode record nothing.
        """
        extras = extras or {}
        ended = batch.terminal | batch.truncated
        for row, sid in enumerate(batch.session_ids.tolist()):
            trajectory = self._trajectory(sid, bool(batch.exploit[row]))
            if trajectory.exploit or ended[row]:
                continue
            step_extras = {k: np.array(v[row]) for k, v in extras.items()}
            trajectory.pending = (states[row].copy(), np.array(actions[row]), step_extras)

    def waiting(self) -> int:
        """Transitions recorded but not cut yet (all sessions)."""
        return sum(len(t.rewards) for t in self.sessions.values())

    def _trajectory(self, sid: int, exploit: bool) -> _Trajectory:
        trajectory = self.sessions.get(sid)
        if trajectory is None:  # a session the host never announced (resumed elsewhere)
            trajectory = self.sessions[sid] = _Trajectory(exploit)
        return trajectory
