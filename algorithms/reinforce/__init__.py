"""REINFORCE with a learned baseline (RELAAX's policy gradient), through the parameter servers.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side,
``parameter_server.py`` the shards' side. docs/algorithms.md describes the method.
"""
