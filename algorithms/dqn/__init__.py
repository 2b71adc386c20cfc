"""DQN distributed as Gorila: local replay per worker, asynchronous pushes, a shared target.

Options: double DQN, dueling heads, n-step returns, proportional prioritized replay.
``config.py`` holds the hyperparameters, ``agent.py`` the worker side, ``replay.py``
the replay buffers (uniform; prioritized with sum trees), ``nstep.py`` the n-step
transitions, ``parameter_server.py`` the shards' side.
"""
