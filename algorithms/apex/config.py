"""The hyperparameters of ``apex``; the defaults are conf/cartpole-apex.yaml's, but for its
learning rate, which decays there.

Ape-X (Horgan et al. 2018) uses a learner batch of 512, n = 3, gamma 0.99, a target
copied every 2500 learner steps, epsilon 0.4 and alpha 7 over its actors, beta 0.4 and
centred RMSProp at 6.25e-5 on Atari; the defaults keep its exploration, n-step returns
and importance exponent, and shrink the rest for small tasks (a batch of 256, a target
copied every 100 learner steps, Adam at 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaax_zmq.core import ConfigError, option

from ..common.config import InputConfig, OptimizerConfig, OutputConfig


@dataclass(frozen=True, kw_only=True)
class ApexConfig:
    """``algorithm.config`` of ``apex``: actors with their own epsilons fill prioritized
    replay servers; a central learner samples them (double DQN, n-step, importance weights).
    """

    input: InputConfig = option(doc="observations (uint8 images of 3 dimensions: conv torso)")
    output: OutputConfig = option(doc="actions: discrete only (output.actions)")
    optimizer: OptimizerConfig = option(
        factory=lambda: OptimizerConfig(learning_rate=1e-3, max_grad_norm=10.0),
        doc="the shards' optimizer (each learner step is one push)",
    )
    hidden_sizes: tuple[int, ...] = option(
        (128, 128), doc="dense layers of the Q network (after the convolutions for images)"
    )
    activation: Literal["tanh", "relu"] = option("relu", doc="hidden activation")
    dueling: bool = option(True, doc="dueling heads: Q = V + A - mean(A)")
    double: bool = option(True, doc="double DQN: the online net picks a', the target rates it")
    gamma: float = option(0.99, ge=0, le=1, doc="reward discount")
    n_step: int = option(3, ge=1, doc="n-step returns: transitions span up to n steps")
    batch_size: int = option(
        256, ge=1, doc="transitions per learner step (sampled from one replay server)"
    )
    target_update_interval: int = option(
        100, ge=1, doc="copy the online weights into the target every this many learner steps"
    )
    epsilon: float = option(
        0.4,
        ge=0,
        le=1,
        doc="Ape-X's base epsilon: slot i of N explores with epsilon^(1 + alpha i/(N-1))",
    )
    epsilon_alpha: float = option(
        7.0, ge=0, doc="Ape-X's alpha: how fast epsilon falls over the slots"
    )
    epsilon_levels: int = option(
        8,
        ge=1,
        doc="N: a worker's training sessions take exploration slots 0, 1, ... in the order they "
        "open (a closed session's slot is reused); session slot k explores with level k mod N",
    )
    beta: float = option(0.4, ge=0, le=1, doc="importance-weight exponent of the samples")
    huber_delta: float = option(1.0, gt=0, doc="the Huber loss is quadratic within +-delta")
    send_every: int = option(
        64, ge=1, doc="transitions per message an actor ships to the replay servers"
    )
    wait_timeout: float = option(
        5.0, gt=0, doc="longest wait of the learner for the version holding its last push"
    )

    def validate_config(self, path: str) -> None:
        if self.output.actions is None:
            raise ConfigError(
                f"{path}.output",
                f"apex takes discrete actions (output.actions), got continuous bounds "
                f"low={self.output.low}, high={self.output.high}",
            )

    def epsilons(self) -> list[float]:
        """Each exploration slot's epsilon: ``epsilon ^ (1 + alpha * i / (N - 1))``."""
        n = self.epsilon_levels
        return [self.epsilon ** (1 + self.epsilon_alpha * i / max(1, n - 1)) for i in range(n)]
