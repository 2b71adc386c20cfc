"""A fixed, seeded linear policy: deterministic actions, no learning, no server.

``algorithm.config`` keys: ``actions`` (discrete actions; the action is the
argmax of ``W @ state``) or ``action_size`` (continuous; the action is
``tanh(W @ state)``), ``seed`` (weights; default 0) and ``torch`` (run the
forward pass with torch instead of numpy; default false).
"""
