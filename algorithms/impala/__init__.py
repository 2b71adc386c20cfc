"""IMPALA (Espeholt et al. 2018): actors ship unrolls to a central learner, which corrects
their policy lag with V-trace. ``config.py`` holds the hyperparameters (``appo``'s too),
``agent.py`` the actor and the learner; the app runs ``relaax-zmq run learner`` beside the
workers and shards (docs/learner.md).
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from .agent import ImpalaActor, ImpalaLearner, build_model
from .config import ImpalaConfig

ALGORITHM = torch_algorithm("impala", ImpalaConfig, ImpalaActor, build_model, learner=ImpalaLearner)
