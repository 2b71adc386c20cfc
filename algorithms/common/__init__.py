"""Pieces shared by the algorithms (relaax_zmq.algorithms.common), written once.

Maths, each function tested against a slow loop reference: ``returns`` (discounted
returns, n-step targets, GAE, TD(lambda)), ``losses`` (policy-gradient, A3C, PPO, DQN and
DDPG/TD3 pieces), ``trpo`` (conjugate gradient, Fisher-vector products, line search, the
TRPO step), ``normalizer`` (distributed running mean/std, reward scaling) and
``schedules`` (learning-rate and coefficient schedules). Model plumbing: ``flat``
(parameters as one flat vector), ``distributions`` and ``spaces``.
"""
