"""``TorchLearner``: the learner side every built-in central-learner algorithm shares.

It holds the algorithm's torch model on the learner's ``device``, bound to the shards'
flat vector. Before each gradient it waits (at most ``wait_timeout``) for the version
that holds its previous push, so that every gradient is computed on the weights its
predecessor produced, as one learner with its own optimizer would; the shards apply it
(their optimizer, checkpoints and publishing to the actors are unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from relaax_zmq.core import ParameterLink, names
from relaax_zmq.core_learner import Learner, LearnerContext

from .flat import FlatModel


class TorchLearner(Learner):
    """Model, weights and pushes of a learner (see the module docstring).

    Args:
        context: the learner's context; ``context.parameters`` is required.
        config: the algorithm's config, with ``optimizer`` (``max_grad_norm``),
            ``batch_size`` and ``wait_timeout``.
        model: the algorithm's network (the shards' vector).
        name: the algorithm's name, for messages.
    """

    def __init__(self, context: LearnerContext, config: Any, model: nn.Module, *, name: str):
        if context.parameters is None:
            raise ValueError(f"{name}: a learner pushes through the parameter servers: no link")
        parameters: ParameterLink = context.parameters
        if parameters.sync:
            raise ValueError(
                f"{name}: expected parameter_servers.update: async (a learner's every push is "
                "one step), got sync"
            )
        self.name = name
        self.config = config
        self.parameters = parameters
        self.metrics = context.metrics
        self.device = torch.device(context.device)
        self.model = model.to(self.device)
        self.flat = FlatModel(self.model)
        if self.flat.param_count != parameters.param_count:
            raise ValueError(
                f"{name}: the model has {self.flat.param_count} parameters, "
                f"the shards serve {parameters.param_count}"
            )
        self.batch_size = config.batch_size
        self.wait_timeout = config.wait_timeout
        self.max_grad_norm = config.optimizer.max_grad_norm
        self.versions: np.ndarray | None = None
        self.pushed_on: int | None = None  # the version the last push was computed on
        self.figures: dict[str, float] = {"steps": 0, "pushes": 0, "wait_timeouts": 0}

    def fresh_weights(self) -> None:
        """Load the version that holds the last push (or the newest, after ``wait_timeout``)."""
        link = self.parameters
        if not link.wait_consistent(self.wait_timeout, newer_than=self.pushed_on):
            self.figures["wait_timeouts"] += 1
        vector, versions, _ = link.weights()
        if self.versions is None or not np.array_equal(versions, self.versions):
            self.flat.load(vector)
            self.versions = versions.copy()

    def push(self, loss: torch.Tensor, steps: int, episodes: int) -> float:
        """Backward ``loss``, clip to ``max_grad_norm``, push; the norm before clipping."""
        self.flat.zero_grad()
        loss.backward()
        grad = self.flat.grad_vector()
        norm = float(torch.linalg.vector_norm(grad))
        if self.max_grad_norm is not None and norm > self.max_grad_norm:
            grad.mul_(self.max_grad_norm / (norm + 1e-6))
        gradient = grad.detach().cpu().numpy().copy()
        assert self.versions is not None
        if not self.parameters.stopping:
            self.parameters.push(gradient, self.versions, steps, episodes)
            self.pushed_on = int(self.versions[0])
            self.figures["pushes"] += 1
        self.figures["steps"] += steps
        return norm

    def record(self, values: dict[str, float]) -> None:
        """Learning figures for the metrics collector, and the learner's status."""
        self.figures.update(values)
        if self.metrics is not None:
            for name, value in values.items():
                self.metrics.scalar(name, float(value))

    def stats(self) -> dict[str, float]:
        return dict(self.figures)


__all__ = ["TorchLearner", "names"]
