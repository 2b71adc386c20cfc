"""DDPG with TD3's options (twin critics, target policy smoothing, delayed actor updates),
through the parameter servers, for continuous actions.

``config.py`` holds the hyperparameters, ``model.py`` the actor-and-critic network and
its parameter groups, ``replay.py`` the worker-local replay, ``agent.py`` the worker side
(acting, learning, per-worker target networks), ``parameter_server.py`` the shards' side.
Plain DDPG: ``twin: false, policy_delay: 1, target_noise: 0``.
"""
