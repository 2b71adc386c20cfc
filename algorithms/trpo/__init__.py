"""TRPO with GAE advantages, through synchronous parameter servers.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side (rollouts, the
natural-gradient policy step, the value fit, the delta it pushes). The method needs ``parameter_servers.update: sync``.
"""

from __future__ import annotations

from ..common.config import DELTA_OPTIMIZER
from ..common.server import torch_algorithm
from .agent import TRPOAgent, build_model
from .config import TRPOConfig

ALGORITHM = torch_algorithm(
    "trpo", TRPOConfig, TRPOAgent, build_model, optimizer=lambda c: DELTA_OPTIMIZER
)
