"""The hyperparameters of ``cem``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from relaax_zmq.core import ConfigError, option

from ..common.config import InputConfig, OutputConfig, checked_schedule
from ..common.schedules import Schedule, make_schedule


@dataclass(frozen=True, kw_only=True)
class CEMConfig:
    """``algorithm.config`` of ``cem``; the defaults are tuned for CartPole-v1.

    There is no ``optimizer`` section: the shards apply the workers' deltas with plain
    SGD at learning rate 1.0 (see ``agent.py``).
    """

    input: InputConfig = option(doc="observations (vectors: the policy is an MLP)")
    output: OutputConfig = option(doc="actions")
    hidden_sizes: tuple[int, ...] = option(
        (), doc="hidden layers of the policy network; empty: a linear policy"
    )
    activation: Literal["tanh", "relu"] = option("tanh", doc="hidden activation")
    population: int = option(
        20, ge=1, doc="candidates a worker evaluates (one episode each) per update"
    )
    elite_fraction: float = option(
        0.2,
        gt=0,
        le=1,
        doc="share of the population, best returns first, that sets the new mean and std",
    )
    initial_std: float = option(
        1.0, gt=0, doc="standard deviation of the initial search distribution"
    )
    min_std: float = option(1e-3, gt=0, doc="no standard deviation falls below this")
    noise: Any = option(
        factory=lambda: {"kind": "linear", "initial": 0.25, "final": 0.0, "steps": 40},
        doc="extra variance added to the elite's: a number, or a schedule over the "
        "distribution's updates (the shards' version)",
    )

    def validate_config(self, path: str) -> None:
        if self.input.spec().is_image:
            raise ConfigError(f"{path}.input", "expected vector observations, got images")
        if self.elite_count(self.population) < 1:
            raise ConfigError(
                f"{path}.elite_fraction",
                f"expected population * elite_fraction >= 0.5 (at least one elite), got "
                f"{self.population} * {self.elite_fraction}",
            )
        checked_schedule(self.noise, f"{path}.noise")

    def noise_schedule(self) -> Schedule:
        return make_schedule(self.noise)

    def elite_count(self, evaluated: int) -> int:
        """Elites among ``evaluated`` candidates: ``evaluated * elite_fraction``, rounded."""
        return math.floor(evaluated * self.elite_fraction + 0.5)
