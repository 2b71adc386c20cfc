"""APPO: asynchronous PPO on a central learner (Sample Factory, RLlib). Actors ship
unrolls as IMPALA's do; the learner takes PPO's clipped surrogate on V-trace advantages
(``algorithms.impala``, which holds the code; docs/learner.md).
"""

from __future__ import annotations

from ..common.server import torch_algorithm
from ..impala.agent import ImpalaActor, ImpalaLearner, build_model
from ..impala.config import APPOConfig

ALGORITHM = torch_algorithm("appo", APPOConfig, ImpalaActor, build_model, learner=ImpalaLearner)
