"""REINFORCE with a learned baseline (RELAAX's policy gradient), through the parameter servers.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side. docs/algorithms.md describes the method.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import ReinforceAgent, build_model
from .config import ReinforceConfig

ALGORITHM = torch_algorithm(
    "reinforce", ReinforceConfig, ReinforceAgent, build_model, allow_mixed_versions=True
)
