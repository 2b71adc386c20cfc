"""TRPO with GAE advantages, through synchronous parameter servers.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side (rollouts, the
natural-gradient policy step, the value fit, the delta it pushes),
``parameter_server.py`` the shards' side (plain SGD with learning rate 1.0 on those
deltas). The method needs ``parameter_servers.update: sync``.
"""
