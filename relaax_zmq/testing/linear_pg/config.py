"""The hyperparameters of ``linear_pg``, checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearPGConfig:
    """``algorithm.config`` of ``linear_pg``.

    Attributes:
        actions: discrete actions (the policy's outputs).
        state_size: values in one (flattened) observation.
        batch_size: transitions (over all sessions of a worker) per pushed gradient.
        gamma: reward discount; returns run to the end of the episode or the batch.
        learning_rate: the optimizer's ``lr``.
        optimizer: ``sgd``, ``rmsprop`` or ``adam`` (run by the shards).
        init_scale: standard deviation of the initial weights.
        seed: seed of the initial weights (with ``environment.seed``).
    """

    actions: int = 4
    state_size: int = 1
    batch_size: int = 10
    gamma: float = 0.97
    learning_rate: float = 0.05
    optimizer: str = "adam"
    init_scale: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("actions", "state_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"linear_pg.{name}: expected an int >= 1, got {value!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"linear_pg.gamma: expected a number in [0, 1], got {self.gamma!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"linear_pg.learning_rate: expected > 0, got {self.learning_rate!r}")
        if self.optimizer not in ("sgd", "rmsprop", "adam"):
            raise ValueError(
                f"linear_pg.optimizer: expected sgd, rmsprop or adam, got {self.optimizer!r}"
            )

    @property
    def param_count(self) -> int:
        """Length of the flat vector ``[W (state_size x actions), b (actions)]``."""
        return (self.state_size + 1) * self.actions
