"""A fixed, seeded linear policy: deterministic actions, no learning, no server.

``algorithm.config`` keys: ``actions`` (discrete actions; the action is the
argmax of ``W @ state``) or ``action_size`` (continuous; the action is
``tanh(W @ state)``), ``seed`` (weights; default 0) and ``torch`` (run the
forward pass with torch instead of numpy; default false).
"""

from relaax_zmq.core import Algorithm

from .agent import LinearPolicyAgent, LinearPolicyConfig, linear_policy_agent

__all__ = ["ALGORITHM", "LinearPolicyAgent", "LinearPolicyConfig"]

ALGORITHM = Algorithm("linear_policy", LinearPolicyConfig, linear_policy_agent)
