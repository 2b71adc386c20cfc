"""The two sides of ``apex``: Ape-X DQN (Horgan et al. 2018).

Actors (``ApexActor``, one per worker) act epsilon-greedily on the shards' newest
weights, each training session with its own epsilon: the k-th session a worker opens
takes exploration slot k (the lowest free one; a closed session's slot is reused) and
explores with ``epsilon ^ (1 + alpha * i / (N - 1))``, ``i = k mod N`` (``epsilon_levels``);
exploit sessions act greedily. Each session's steps become n-step transitions
(``NStepAssembler``); every ``send_every`` of them go to the replay servers in one
message, with initial priorities ``|TD error|`` computed on the actor's own network.

The learner (``ApexLearner``, ``source`` "replay") takes batches sampled by priority and
pushes the gradient of the importance-weighted Huber loss of double-DQN n-step targets;
its target network is a copy of the online weights, refreshed every
``target_update_interval`` learner steps; ``learn`` returns the batch's new priorities
``|TD error|``.

Fields an actor ships, each (N, ...): ``obs``, ``action`` int64, ``reward`` float32
(the n-step discounted sum), ``next_obs`` (zeros after a termination), ``discount``
float32 (``gamma ** m`` for a window of m steps, 0 after a termination), ``priority``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relaax_zmq.core import AgentContext, StepBatch, names
from relaax_zmq.core_learner import ExperienceBatch, ExperienceSink, LearnerContext

from ..common.agent import AgentCounters, WindowedAgent, segment_episodes
from ..common.flat import load_flat
from ..common.learner import TorchLearner
from ..common.losses import dqn_td_targets, td_loss
from ..common.networks import QNetwork, from_sections
from ..common.nstep import NStepAssembler, Transition
from ..common.recorder import Recorder, Segment
from .config import ApexConfig


def build_model(config: ApexConfig) -> QNetwork:
    """The online Q network (the shards' vector); the learner's target is a copy of it."""
    return from_sections(QNetwork, config, dueling=config.dueling)


@dataclass
class ApexCounters(AgentCounters):
    """What an apex actor counts besides ``AgentCounters``."""

    transitions: int = 0  # n-step transitions made
    shipped: int = 0  # messages the replay link took
    dropped: int = 0  # messages it dropped (queue full past send_timeout) or not sent


class ApexActor(WindowedAgent):
    """Explores with per-session epsilons and ships prioritized transitions (module docstring)."""

    counters: ApexCounters

    def __init__(self, context: AgentContext, config: ApexConfig) -> None:
        if context.experience is None:
            raise ValueError(
                "apex: expected a link to the replay servers to ship transitions to "
                "(a worker builds it from the replay section), got none"
            )
        super().__init__(context, config, build_model(config), name="apex", recorder=Recorder(1))
        self.experience: ExperienceSink = context.experience
        self.nstep = NStepAssembler(config.n_step, config.gamma)
        self.levels = np.asarray(config.epsilons())
        self.slots: dict[int, int] = {}  # training session -> exploration slot
        self.pending: list[Transition] = []
        self.unreported = [0, 0]  # environment steps, episodes the next message covers
        self.counters = ApexCounters()

    # -- sessions -----------------------------------------------------------------------------

    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        super().open_sessions(session_ids, exploit=exploit)
        if not exploit:
            for sid in session_ids.tolist():
                self._slot(sid)

    def close_sessions(self, session_ids: np.ndarray) -> None:
        super().close_sessions(session_ids)  # flushes the windows first
        for sid in session_ids.tolist():
            self.slots.pop(sid, None)

    def _slot(self, sid: int) -> int:
        """The session's exploration slot: the lowest free one at its first sight."""
        slot = self.slots.get(sid)
        if slot is None:
            taken = set(self.slots.values())
            slot = next(k for k in range(len(taken) + 1) if k not in taken)
            self.slots[sid] = slot
        return slot

    def epsilon_of(self, session_ids: np.ndarray, exploit: np.ndarray) -> np.ndarray:
        """(B,) each row's epsilon (0 for exploit rows, which take no slot)."""
        training = ~np.asarray(exploit, bool)
        ids = session_ids[training].tolist()
        slots = np.fromiter((self._slot(s) for s in ids), np.int64, len(ids))
        epsilons = np.zeros(len(session_ids))
        epsilons[training] = self.levels[slots % len(self.levels)]
        return epsilons

    def flush_windows(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            self.pending += self.nstep.flush(sid)

    # -- acting -------------------------------------------------------------------------------

    def policy(
        self, observations: torch.Tensor, batch: StepBatch
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        with torch.no_grad():
            actions = self.model(observations).argmax(dim=1).cpu().numpy()
        explore = self.rng.random(len(actions)) < self.epsilon_of(batch.session_ids, batch.exploit)
        if explore.any():
            assert self.action.n is not None
            actions[explore] = self.rng.integers(0, self.action.n, int(explore.sum()))
        return actions, {}

    # -- shipping -----------------------------------------------------------------------------

    def learn(self, segments: list[Segment]) -> None:  # type: ignore[override]
        """Make the segments' n-step transitions; ship every full message of them."""
        for segment in segments:
            self.pending += self.nstep.add(segment)
        self.unreported[0] += sum(len(s) for s in segments)
        self.unreported[1] += segment_episodes(segments)
        size = self.config.send_every
        while len(self.pending) >= size:
            chunk, self.pending = self.pending[:size], self.pending[size:]
            self.ship(chunk)

    def ship(self, transitions: list[Transition]) -> bool:
        """Send one message of ``transitions`` with their initial priorities."""
        self.counters.transitions += len(transitions)
        if self.parameters.stopping or self.versions is None:
            self.counters.dropped += 1
            return False
        fields = transition_fields(
            transitions,
            self.observation.shape,
            np.float32 if self.normalizer else self.observation.dtype,
        )
        fields["priority"] = self.priorities(fields)
        if self.normalizer is not None:
            self.parameters.add_statistics(self.normalizer.take_delta())
        steps, episodes = self.unreported
        sent = self.experience.send(
            fields, version=int(self.versions.min()), steps=steps, episodes=episodes
        )
        self.unreported = [0, 0]
        self.counters.shipped += int(sent)
        self.counters.dropped += int(not sent)
        return sent

    def priorities(self, fields: dict[str, np.ndarray]) -> np.ndarray:
        """(N,) float32 ``|TD error|`` of the transitions on this actor's network (its own
        greedy bootstrap: an actor holds no target network)."""
        with torch.no_grad():
            obs = torch.as_tensor(fields["obs"], device=self.device)
            next_obs = torch.as_tensor(fields["next_obs"], device=self.device)
            action = torch.as_tensor(fields["action"], device=self.device)
            q = self.model(obs).gather(1, action[:, None]).squeeze(1)
            bootstrap = self.model(next_obs).max(dim=1).values
            reward = torch.as_tensor(fields["reward"], device=self.device)
            discount = torch.as_tensor(fields["discount"], device=self.device)
            errors = (reward + discount * bootstrap - q).abs()
        return errors.cpu().numpy().astype(np.float32)

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "pending_transitions": len(self.pending)}


def transition_fields(
    transitions: list[Transition], shape: tuple[int, ...], dtype: np.dtype
) -> dict[str, np.ndarray]:
    """The (N, ...) arrays of n-step ``transitions`` (module docstring)."""
    zeros = np.zeros(shape, dtype)
    ended = [t.next_state is None for t in transitions]
    return {
        "obs": np.stack([t.state for t in transitions]).astype(dtype, copy=False),
        "action": np.asarray([t.action for t in transitions], np.int64).reshape(len(transitions)),
        "reward": np.asarray([t.reward for t in transitions], np.float32),
        "next_obs": np.stack(
            [zeros if e else t.next_state for t, e in zip(transitions, ended, strict=True)]
        ).astype(dtype, copy=False),
        "discount": np.asarray(
            [0.0 if e else t.discount for t, e in zip(transitions, ended, strict=True)], np.float32
        ),
    }


class ApexLearner(TorchLearner):
    """The learner side: importance-weighted double-DQN n-step steps (module docstring)."""

    source = "replay"

    def __init__(self, context: LearnerContext, config: ApexConfig) -> None:
        super().__init__(context, config, build_model(config), name="apex")
        self.target = build_model(config).to(self.device).requires_grad_(False)
        self.beta = config.beta  # the importance-weight exponent the replay servers sample with
        self.learn_steps = 0
        self.figures.update({"learn_steps": 0, "target_syncs": 0})

    def learn(self, batch: ExperienceBatch) -> np.ndarray:
        config = self.config
        self.fresh_weights()
        if self.learn_steps % config.target_update_interval == 0:
            load_flat(self.target, self.flat.vector)
            self.figures["target_syncs"] += 1
        t = {k: torch.tensor(v, device=self.device) for k, v in batch.fields.items()}
        weights = None if batch.weights is None else torch.tensor(batch.weights, device=self.device)
        q = self.model(t["obs"]).gather(1, t["action"][:, None]).squeeze(1)
        with torch.no_grad():
            next_target = self.target(t["next_obs"])
            next_online = self.model(t["next_obs"]) if config.double else None
        targets = dqn_td_targets(
            t["reward"],
            torch.zeros_like(t["reward"]),
            next_online,
            next_target,
            t["discount"],
            double=config.double,
        )
        result = td_loss(q, targets, weights, config.huber_delta)
        norm = self.push(result.loss, batch.steps, batch.episodes)
        self.learn_steps += 1
        self.figures["learn_steps"] = self.learn_steps
        self.record(
            {
                names.LOSS: float(result.loss.detach()),
                names.Q_VALUE: float(q.detach().mean()),
                names.GRADIENT_NORM: norm,
            }
        )
        return result.td_errors.abs().cpu().numpy().astype(np.float32)
