"""The cross-entropy method: a Gaussian search over a small policy network's parameters.

``config.py`` holds the hyperparameters, ``policy.py`` the policy network evaluated with
one parameter vector per row and the elite update, ``agent.py`` the worker side
(candidates, whole-episode returns, the delta it pushes), ``parameter_server.py`` the
shards' side (the distribution's [mean, log_std], plain SGD at rate 1.0 on deltas).
"""
