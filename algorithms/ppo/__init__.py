"""Proximal policy optimisation (clipped surrogate, GAE) in synchronous parameter-server rounds.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side (collect a rollout on
one weight version, then one minibatch gradient per sync round), ``rollout.py`` the GAE
and minibatch bookkeeping. The app must run
``parameter_servers.update: sync``.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import PPOAgent, build_model
from .config import PPOConfig

ALGORITHM = torch_algorithm("ppo", PPOConfig, PPOAgent, build_model)
