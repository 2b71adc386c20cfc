"""The cross-entropy method: a Gaussian search over a small policy network's parameters.

``config.py`` holds the hyperparameters, ``policy.py`` the policy network evaluated with
one parameter vector per row and the elite update, ``agent.py`` the worker side
(candidates, whole-episode returns, the delta it pushes).
"""

from __future__ import annotations

from ..common.config import DELTA_OPTIMIZER
from ..common.server import torch_algorithm
from .agent import CEMAgent, build_model
from .config import CEMConfig

ALGORITHM = torch_algorithm(
    "cem",
    CEMConfig,
    CEMAgent,
    build_model,
    optimizer=lambda c: DELTA_OPTIMIZER,
    allow_mixed_versions=True,
)
