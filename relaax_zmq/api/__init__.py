"""The Python API: train, load, use and evaluate policies (docs/python.md).

import relaax_zmq
run = relaax_zmq.learn("CartPole-v1", algo="ppo", target_reward=475)
action, _ = run.policy.predict(observation)
"""

from relaax_zmq.api.callbacks import Callback, EvalCallback, Progress
from relaax_zmq.api.evaluate import Evaluation, evaluate
from relaax_zmq.api.learn import Run, learn
from relaax_zmq.api.networks import PolicyError
from relaax_zmq.api.policy import ExportedPolicy, Policy

__all__ = [
    "Callback",
    "EvalCallback",
    "Evaluation",
    "ExportedPolicy",
    "Policy",
    "PolicyError",
    "Progress",
    "Run",
    "evaluate",
    "learn",
]
