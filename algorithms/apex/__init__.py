"""Ape-X DQN (Horgan et al. 2018): actors explore with their own epsilons and ship n-step
transitions with initial priorities to the replay servers; a central learner samples them
by priority and learns double DQN with importance weights, through the shards
(``parameter_servers.update: async``). ``config.py`` holds the hyperparameters,
``agent.py`` the actor and the learner; the app runs ``relaax-zmq run replay`` and
``relaax-zmq run learner`` beside the workers and shards.
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import ApexActor, ApexLearner, build_model
from .config import ApexConfig

ALGORITHM = torch_algorithm(
    "apex", ApexConfig, ApexActor, build_model, allow_mixed_versions=True, learner=ApexLearner
)
