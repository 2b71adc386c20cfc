"""Fixed-length unrolls of each training session, for a central learner (IMPALA, APPO).

An unroll is T consecutive transitions of one session, across episode boundaries, as
IMPALA's actors send them: ``obs`` (T+1, *obs) holds the observation of each step and
the one after the last (the bootstrap), ``action`` (T, *action), ``behaviour_log_prob``
(T,) the log-probability under the policy that acted, ``reward`` (T,) and ``done`` (T,)
(1.0 where the episode ended after the step: the learner's discount is ``gamma * (1 -
done)``). After an episode's end the next observation in the unroll is the next
episode's first one.

With an LSTM the unroll also holds the recurrent state the actor acted from at its first
step (``start_shapes``: ``h`` and ``c``, each (hidden,)); the learner unrolls the core from
it, resetting it after each step with ``done``.

A truncated episode (time limit) is not a terminal state: its last reward gets ``gamma *
V(final observation)`` added (the behaviour policy's value of the final observation, as
SB3 does), then the step counts as done. The actor computes that value in the forward
pass it runs for every row, ended rows included (``UnrollRecorder.act``).

Use, once per ``Agent.act``, like ``Recorder``::

    unrolls = recorder.step(batch, observations)  # gives rewards, returns full unrolls
    ... actions, log-probabilities, values; recorder.version = the weights' version ...
    recorder.act(batch, observations, actions, {LOG_PROB: ..., VALUE: ...})
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relaax_zmq.core import StepBatch

#: The fields of an unroll, in wire order.
FIELDS = ("obs", "action", "behaviour_log_prob", "reward", "done")
#: The extras ``act`` reads: each row's log-probability and value under the acting policy.
LOG_PROB, VALUE = "log_prob", "value"


@dataclass
class _Slot:
    """One training session's unroll in the making."""

    obs: np.ndarray  # (T+1, *obs)
    action: np.ndarray  # (T, *action)
    log_prob: np.ndarray  # (T,)
    reward: np.ndarray  # (T,)
    done: np.ndarray  # (T,)
    start: dict[str, np.ndarray]  # per-unroll fields taken at its first action (LSTM state)
    pos: int = 0  # transitions complete (rewarded)
    acting: bool = False  # obs[pos] has an action waiting for its reward
    version: int = -1  # the oldest weight version in the unroll
    episodes: int = 0  # episodes ended in the unroll


@dataclass(frozen=True)
class Unroll:
    """A finished unroll: its arrays (see the module docstring), the oldest weight version
    that acted in it and the episodes that ended in it."""

    fields: dict[str, np.ndarray]
    version: int
    episodes: int

    @property
    def steps(self) -> int:
        return len(self.fields["reward"])


class UnrollRecorder:
    """Training sessions' transitions in unrolls of ``length`` (see the module docstring).

    Args:
        length: T, transitions per unroll.
        obs_shape, obs_dtype: one observation as the agent sees it.
        action_shape, action_dtype: one action.
        gamma: the discount of a truncated episode's bootstrap value.
        start_shapes: extras kept once per unroll, from its first action (float32).
    """

    def __init__(
        self,
        length: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | str,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype | str,
        gamma: float,
        start_shapes: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"unroll length: expected >= 1, got {length}")
        self.length = length
        self.obs = (tuple(obs_shape), np.dtype(obs_dtype))
        self.actions = (tuple(action_shape), np.dtype(action_dtype))
        self.gamma = gamma
        self.start_shapes = dict(start_shapes or {})
        self.sessions: dict[int, _Slot] = {}  # training sessions only
        #: the weight version the next ``act`` records (the actor sets it before)
        self.version = 0
        self._rows: list[_Slot | None] = []  # the last step's slot per row

    def _new_slot(self) -> _Slot:
        t, (oshape, odtype), (ashape, adtype) = self.length, self.obs, self.actions
        return _Slot(
            obs=np.zeros((t + 1, *oshape), odtype),
            action=np.zeros((t, *ashape), adtype),
            log_prob=np.zeros(t, np.float32),
            reward=np.zeros(t, np.float32),
            done=np.zeros(t, np.float32),
            start={k: np.zeros(shape, np.float32) for k, shape in self.start_shapes.items()},
        )

    # -- sessions -----------------------------------------------------------------------------

    def open(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        if not exploit:
            for sid in session_ids.tolist():
                self.sessions[sid] = self._new_slot()

    def close(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            self.sessions.pop(sid, None)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        """Episodes cut short by the exchange (a moved block): their unrolls start over."""
        for sid in session_ids.tolist():
            if sid in self.sessions:
                self.sessions[sid] = self._new_slot()

    def waiting(self) -> int:
        """Transitions recorded but not shipped yet."""
        return sum(s.pos for s in self.sessions.values())

    # -- steps --------------------------------------------------------------------------------

    def step(self, batch: StepBatch, states: np.ndarray) -> list[Unroll]:
        """Give each waiting action its reward; the unrolls this step's observations complete."""
        done_unrolls: list[Unroll] = []
        rows: list[_Slot | None] = []
        rewards, ends, starts = batch.rewards, batch.ends, batch.starts
        for r, sid in enumerate(batch.session_ids.tolist()):
            slot = self.sessions.get(sid)
            rows.append(slot)
            if slot is None:
                continue
            if slot.acting and not starts[r]:  # the reward of the waiting action
                slot.reward[slot.pos] = rewards[r]
                slot.done[slot.pos] = float(ends[r])
                slot.episodes += int(ends[r])
                slot.pos += 1
            elif slot.acting and slot.pos > 0:  # a new episode without an end: a cut
                slot.done[slot.pos - 1] = 1.0
            slot.acting = False
            if ends[r]:
                continue  # no action on a final observation; the next row starts an episode
            if slot.pos == self.length:
                slot.obs[self.length] = states[r]
                done_unrolls.append(self._ship(slot))
            slot.obs[slot.pos] = states[r]
        self._rows = rows
        return done_unrolls

    def act(
        self,
        batch: StepBatch,
        states: np.ndarray,
        actions: np.ndarray,
        extras: dict[str, np.ndarray],
    ) -> None:
        """Remember each training row's action; add a truncation's bootstrap value."""
        truncated, ends, version = batch.truncated, batch.ends, self.version
        log_probs, values = extras[LOG_PROB], extras[VALUE]
        for r, slot in enumerate(self._rows):
            if slot is None:
                continue
            if ends[r]:
                if truncated[r] and not batch.terminal[r] and slot.pos > 0:
                    slot.reward[slot.pos - 1] += self.gamma * float(values[r])
                continue
            slot.action[slot.pos] = actions[r]
            slot.log_prob[slot.pos] = log_probs[r]
            slot.acting = True
            if slot.pos == 0 or slot.version < 0:
                slot.version = version
                for name, value in slot.start.items():
                    value[...] = extras[name][r]
            else:
                slot.version = min(slot.version, version)
        self._rows = []

    def _ship(self, slot: _Slot) -> Unroll:
        """A copy of the full unroll; the slot starts the next one."""
        unroll = Unroll(
            fields={
                "obs": slot.obs.copy(),
                "action": slot.action.copy(),
                "behaviour_log_prob": slot.log_prob.copy(),
                "reward": slot.reward.copy(),
                "done": slot.done.copy(),
                **{k: v.copy() for k, v in slot.start.items()},
            },
            version=slot.version,
            episodes=slot.episodes,
        )
        slot.pos, slot.episodes, slot.version = 0, 0, -1
        return unroll
