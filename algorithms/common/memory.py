"""The LSTM state of every session a worker serves, kept between ``act`` calls.

A session's state is zero at its first step, at the first step of each episode (a NaN
reward), after every step that ends an episode (terminal or truncated) and after
``forget`` (the session closed, or its episode was cut by the client). Rows of a batch
never share state: each session's (h, c) is stored under its own id.
"""

from __future__ import annotations

import numpy as np
import torch

from .networks import LSTMState


class SessionMemory:
    """Per-session (h, c), each a (hidden_size,) float32 array."""

    def __init__(self, hidden_size: int) -> None:
        self.hidden_size = hidden_size
        self.states: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.states)

    def get(self, session_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The session's (h, c) before its next step; None: it starts from zeros."""
        return self.states.get(int(session_id))

    def gather(
        self, session_ids: np.ndarray, starts: np.ndarray, device: torch.device
    ) -> LSTMState:
        """(h, c), each (B, hidden_size): the rows' states, zeros where ``starts`` or none kept."""
        h = np.zeros((len(session_ids), self.hidden_size), np.float32)
        c = np.zeros_like(h)
        for row, sid in enumerate(session_ids.tolist()):
            kept = None if starts[row] else self.states.get(sid)
            if kept is not None:
                h[row], c[row] = kept
        return torch.from_numpy(h).to(device), torch.from_numpy(c).to(device)

    def scatter(self, session_ids: np.ndarray, memory: LSTMState, ended: np.ndarray) -> None:
        """Keep each row's new state; rows that ended their episode start over from zeros."""
        h, c = (m.detach().cpu().numpy() for m in memory)
        for row, sid in enumerate(session_ids.tolist()):
            if ended[row]:
                self.states.pop(sid, None)
            else:
                self.states[sid] = (h[row].copy(), c[row].copy())

    def forget(self, session_ids: np.ndarray) -> None:
        """Drop the sessions' states (closed sessions, episodes cut by the client)."""
        for sid in session_ids.tolist():
            self.states.pop(int(sid), None)
