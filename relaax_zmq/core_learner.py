"""The plugin API's central-learner part, importable from ``relaax_zmq.core``.

An algorithm with a central learner (impala, appo, apex) declares ``Algorithm.learner``:
its agents become actors that ship experience through ``AgentContext.experience`` (an
``ExperienceSink``), and a learner daemon feeds its ``Learner`` batches (docs/learner.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from relaax_zmq.core import Algorithm, MetricsRecorder, ParameterLink


class ExperienceSink(Protocol):
    """Where an actor ships experience (the learners' unrolls, the replay servers'
    transitions): ``send`` queues one message of named arrays, each (N, ...) for N items,
    produced on weights ``version``; it blocks while the queue is full, at most the
    configured ``send_timeout``, then drops the message, counts it and returns False."""

    def send(
        self, fields: Mapping[str, np.ndarray], *, version: int, steps: int, episodes: int
    ) -> bool: ...


@dataclass(frozen=True)
class ExperienceBatch:
    """What a learner learns from in one step: named arrays stacked on a first axis of
    items (unrolls (N, T+1, ...) from actors, or transitions (N, ...) from a replay), the
    weight version each item was produced on, the environment steps and episodes they
    cover; from a replay, also the items' ``keys`` and importance ``weights``."""

    fields: Mapping[str, np.ndarray]
    versions: np.ndarray  # (N,) int64
    steps: int = 0
    episodes: int = 0
    keys: np.ndarray | None = None  # (N,) int64: replay items (priority updates name them)
    weights: np.ndarray | None = None  # (N,) float32: importance-sampling weights

    def __len__(self) -> int:
        return int(self.versions.shape[0])


@dataclass(frozen=True)
class LearnerContext:
    """What a learner is built from: as ``AgentContext`` for a learner daemon (its name,
    ``device``, the ``parameters`` link it pushes gradients through)."""

    config: Mapping[str, Any] = field(default_factory=dict)
    name: str = "learner"
    device: str = "cpu"
    seed: int | None = None
    parameters: ParameterLink | None = None
    metrics: MetricsRecorder | None = None


class Learner(ABC):
    """The learner side of an algorithm with a central learner (impala, appo, apex).

    The learner daemon feeds it ``batch_size`` items at a time: unrolls the actors sent
    (``source`` "unrolls"), or transitions sampled from the replay servers ("replay").
    ``learn`` makes one (or more) gradient steps through ``LearnerContext.parameters``
    and returns the items' new priorities for a replay batch (None otherwise). A replay
    batch's importance weights are (N * P(i)) ** -``beta`` over the N items held, divided
    by the largest any of them has."""

    source: Literal["unrolls", "replay"] = "unrolls"
    batch_size: int = 1
    beta: float = 1.0  # replay samples' importance exponent in [0, 1] (0: no correction)

    @abstractmethod
    def learn(self, batch: ExperienceBatch) -> np.ndarray | None:
        """One learning step on ``batch``; new priorities (N,) for replay items, else None."""

    def stats(self) -> dict[str, float]:
        """Numbers for the learner's status (steps, losses ...)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources when the learner stops."""


def make_learner(algorithm: Algorithm, context: LearnerContext) -> Learner:
    """``algorithm``'s learner side for ``context`` (its config parsed); ``ValueError`` for an
    algorithm without one."""
    if algorithm.learner is None:
        raise ValueError(f"{algorithm.name} has no learner side (its workers learn themselves)")
    learner = algorithm.learner(context, algorithm.parse(context.config))
    if not isinstance(learner, Learner):
        raise TypeError(f"{algorithm.name}: expected a Learner, got {type(learner).__name__}")
    return learner
