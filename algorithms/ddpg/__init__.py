"""DDPG with TD3's options (twin critics, target policy smoothing, delayed actor updates),
through the parameter servers, for continuous actions.

``config.py`` holds the hyperparameters, ``model.py`` the actor-and-critic network and
its parameter groups, ``replay.py`` the worker-local replay, ``agent.py`` the worker side
(acting, learning, per-worker target networks).
Plain DDPG: ``twin: false, policy_delay: 1, target_noise: 0``.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import DDPGAgent
from .config import DDPGConfig
from .model import build_model, param_groups

ALGORITHM = torch_algorithm(
    "ddpg", DDPGConfig, DDPGAgent, build_model, groups=param_groups, allow_mixed_versions=True
)
