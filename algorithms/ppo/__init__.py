"""Proximal policy optimisation (clipped surrogate, GAE) in synchronous parameter-server rounds.

``config.py`` holds the hyperparameters, ``agent.py`` the worker side (collect a rollout on
one weight version, then one minibatch gradient per sync round), ``rollout.py`` the GAE
and minibatch bookkeeping, ``parameter_server.py`` the shards' side. The app must run
``parameter_servers.update: sync``.
"""
