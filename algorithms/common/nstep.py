"""n-step transitions from per-session ``Segment``s.

Each step ``t`` of an episode gives the transition ``(s_t, a_t, R_t, s_{t+m}, gamma^m)``
with ``R_t = sum_{k<m} gamma^k r_{t+k}`` over a window of ``m = n`` steps, or fewer
where the episode ends first: after a termination the window's ``next_state`` is None
(nothing is bootstrapped), after a truncation it is the final observation (bootstrapped).
A session whose episode stops without an end flag (a client reset, a closed session) is
``flush``ed: its open windows bootstrap from the last observation seen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..common.recorder import Segment


class Transition(NamedTuple):
    """One (n-step) transition; ``next_state`` None: the window ended by termination."""

    state: np.ndarray
    action: np.ndarray
    reward: float
    next_state: np.ndarray | None
    discount: float


@dataclass
class _Window:
    steps: deque[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=deque)
    last_next_state: np.ndarray | None = None


class NStepAssembler:
    """Per-session windows of the last ``n`` steps (see the module docstring)."""

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1 or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"n, gamma: expected n >= 1 and gamma in [0, 1], got {n}, {gamma}")
        self.n = n
        self.gamma = gamma
        self.sessions: dict[int, _Window] = {}

    def add(self, segment: Segment) -> list[Transition]:
        """The transitions whose windows ``segment`` completes (in step order)."""
        window = self.sessions.setdefault(segment.session_id, _Window())
        out: list[Transition] = []
        last = len(segment) - 1
        for t in range(len(segment)):
            next_state = segment.next_state if t == last else segment.states[t + 1]
            window.steps.append((segment.states[t], segment.actions[t], float(segment.rewards[t])))
            window.last_next_state = next_state
            if len(window.steps) == self.n:
                out.append(self._emit(window, next_state))
        if segment.episode_ended:
            out += self._drain(window, segment.next_state)
            del self.sessions[segment.session_id]
        return out

    def flush(self, session_id: int) -> list[Transition]:
        """The session's open windows, bootstrapped from its last observation; forgets it."""
        window = self.sessions.pop(session_id, None)
        if window is None:
            return []
        return self._drain(window, window.last_next_state)

    def _drain(self, window: _Window, next_state: np.ndarray | None) -> list[Transition]:
        out = []
        while window.steps:
            out.append(self._emit(window, next_state))
        return out

    def _emit(self, window: _Window, next_state: np.ndarray | None) -> Transition:
        """The transition of the window's first step, ending at ``next_state``; pops that step."""
        reward = sum(self.gamma**k * r for k, (_, _, r) in enumerate(window.steps))
        discount = self.gamma ** len(window.steps)
        state, action, _ = window.steps.popleft()
        return Transition(state, action, reward, next_state, discount)
