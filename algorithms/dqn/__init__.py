"""DQN distributed as Gorila: local replay per worker, asynchronous pushes, a shared target.

Options: double DQN, dueling heads, n-step returns, proportional prioritized replay.
``config.py`` holds the hyperparameters, ``agent.py`` the worker side, ``replay.py``
the replay buffers (uniform; prioritized with sum trees), ``nstep.py`` the n-step
transitions.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import DqnAgent, build_model
from .config import DqnConfig

ALGORITHM = torch_algorithm("dqn", DqnConfig, DqnAgent, build_model, allow_mixed_versions=True)
