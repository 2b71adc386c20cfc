"""The agent side of ``linear_pg``: act with the shards' weights, push REINFORCE gradients.

Each training session's transitions (observation, action, the reward that came
with the next step) are kept until the worker holds ``batch_size`` of them; then
one gradient over all of them, computed on the current weights, is pushed with
those weights' versions. Until the first weights arrive, training sessions act
uniformly at random and record nothing. With ``update: sync`` the agent records
only on consistent weights, pushes one gradient per version, and records again
once the next version has arrived.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from relaax_zmq.core import Agent, AgentContext, MetricsRecorder, StepBatch, names
from relaax_zmq.ps.client import ParameterClient

from .config import LinearPGConfig
from .policy import advantages, discounted_returns, probabilities, reinforce_gradient


@dataclass
class _Session:
    exploit: bool
    pending: tuple[np.ndarray, int] | None = None  # acted on, reward not seen yet
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    ends: list[bool] = field(default_factory=list)

    def clear(self) -> None:
        self.states, self.actions, self.rewards, self.ends = [], [], [], []


@dataclass
class LinearPGCounters:
    """What the ``linear_pg`` agent counts (its ``stats`` show every field by name)."""

    steps: int = 0  # session steps acted on
    episodes: int = 0  # episodes ended (terminal or truncated steps)
    pushes: int = 0  # gradients pushed
    exploit_steps: int = 0  # steps of exploit sessions
    random_steps: int = 0  # steps acted on uniformly, before the first weights


class LinearPGAgent(Agent):
    """REINFORCE on a linear softmax policy (see the module docstring)."""

    def __init__(
        self,
        config: LinearPGConfig,
        parameters: ParameterClient,
        seed: int,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self.config = config
        self.parameters = parameters
        self.metrics = metrics
        self.sync = parameters.sync
        self.rng = np.random.default_rng(seed)
        self.sessions: dict[int, _Session] = {}
        self.recorded = 0  # transitions waiting for the next push
        self.pushed_version = -1  # sync: the version of the last push
        self.counters = LinearPGCounters()
        self._episodes_since_push = 0

    # -- sessions -----------------------------------------------------------------------------

    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        for sid in session_ids.tolist():
            self.sessions[sid] = _Session(exploit)

    def close_sessions(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            session = self.sessions.pop(sid, None)
            if session is not None:
                self.recorded -= len(session.actions)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            session = self.sessions.get(sid)
            if session is not None:
                session.pending = None
                if session.ends:
                    session.ends[-1] = True

    # -- acting -------------------------------------------------------------------------------

    def act(self, batch: StepBatch) -> np.ndarray:
        n = len(batch)
        if batch.states is None:
            self._rewards(batch)
            return np.zeros(n, np.int64)
        states = np.asarray(batch.states, np.float32).reshape(n, -1)
        if states.shape[1] != self.config.state_size:
            raise ValueError(
                f"expected observations of {self.config.state_size} values, got {states.shape[1]}"
            )
        self.parameters.poll()
        self._rewards(batch)
        params, versions, consistent = self.parameters.weights()
        usable = self.parameters.ready
        record = usable and self._may_record(versions)
        if usable:
            probs = probabilities(params, states, self.config.actions)
        else:
            probs = np.full((n, self.config.actions), 1.0 / self.config.actions)
            self.counters.random_steps += n
        actions = np.empty(n, np.int64)
        ended = batch.terminal | batch.truncated
        for row, sid in enumerate(batch.session_ids.tolist()):
            session = self._session(sid, bool(batch.exploit[row]))
            if session.exploit:
                actions[row] = int(np.argmax(probs[row]))
                self.counters.exploit_steps += 1
                continue
            actions[row] = int(self.rng.choice(self.config.actions, p=probs[row]))
            if record and not ended[row]:
                session.pending = (states[row].copy(), int(actions[row]))
        self.counters.steps += n
        if self.recorded >= self.config.batch_size:
            self._push(params, versions)
        return actions

    def _rewards(self, batch: StepBatch) -> None:
        """Close each session's pending transition with the reward this step brought."""
        ended = batch.terminal | batch.truncated
        for row, sid in enumerate(batch.session_ids.tolist()):
            session = self._session(sid, bool(batch.exploit[row]))
            reward = float(batch.rewards[row])
            if session.pending is not None and not np.isnan(reward):
                state, action = session.pending
                session.states.append(state)
                session.actions.append(action)
                session.rewards.append(reward)
                session.ends.append(bool(ended[row]))
                self.recorded += 1
            session.pending = None
            if ended[row]:
                self.counters.episodes += 1
                self._episodes_since_push += 1
                if session.ends:
                    session.ends[-1] = True

    def _may_record(self, versions: np.ndarray) -> bool:
        """Sync: record only on one version newer than the last push (older records go)."""
        if not self.sync:
            return True
        if not self.parameters.consistent or int(versions[0]) <= self.pushed_version:
            return False
        return True

    def _session(self, sid: int, exploit: bool) -> _Session:
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = _Session(exploit)
        return session

    # -- learning -----------------------------------------------------------------------------

    def _push(self, params: np.ndarray, versions: np.ndarray) -> None:
        states, actions, advantage = [], [], []
        for session in self.sessions.values():
            if not session.actions:
                continue
            returns = discounted_returns(
                np.array(session.rewards), np.array(session.ends), self.config.gamma
            )
            states += session.states
            actions += session.actions
            advantage.append(returns)
            session.clear()
        steps, self.recorded = len(actions), 0
        if not steps:
            return
        grad = reinforce_gradient(
            params,
            np.stack(states),
            np.array(actions),
            advantages(np.concatenate(advantage)),
            self.config.actions,
        )
        if self.metrics is not None:
            self.metrics.scalar(names.GRADIENT_NORM, float(np.linalg.norm(grad)))
        self.parameters.push(grad, versions, steps, self._episodes_since_push)
        self._episodes_since_push = 0
        self.counters.pushes += 1
        if self.sync:
            self.pushed_version = int(versions[0])

    def stats(self) -> dict[str, float]:
        return {**asdict(self.counters), "sessions": len(self.sessions), "recorded": self.recorded}


def linear_pg_agent(context: AgentContext, config: LinearPGConfig) -> Agent:
    """Build the agent; it needs the worker's parameter-server link."""
    if context.parameters is None:
        raise ValueError("linear_pg learns through the parameter servers: no ParameterClient")
    seed = zlib.crc32(f"{context.seed}/{context.worker_id}".encode())
    return LinearPGAgent(config, context.parameters, seed, context.metrics)
