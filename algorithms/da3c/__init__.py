"""DA3C: distributed asynchronous advantage actor-critic (RELAAX's flagship), through the shards.

Each worker steps its sessions with the policy, cuts their experience into n-step
segments (``t_max``) and, once it holds ``batch_size`` transitions, pushes one
gradient of the actor-critic loss computed on its current weights; the shards apply
the gradients asynchronously as they come (``allow_mixed_versions=True``: a gradient
may be computed on weights of different versions on different shards, which A3C
tolerates like any other staleness). Discrete (softmax) and continuous (Gaussian,
state-independent log std) actions, feed-forward or LSTM networks, vector or image
(uint8, conv torso) observations.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side,
``memory.py`` the per-session LSTM state.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import DA3CAgent, build_model
from .config import DA3CConfig

ALGORITHM = torch_algorithm("da3c", DA3CConfig, DA3CAgent, build_model, allow_mixed_versions=True)
