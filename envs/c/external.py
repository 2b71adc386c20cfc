"""The ``environment.run`` of apps whose clients are not Python programs (conf/cartpole-c.yaml).

The sessions of such an app come from programs that connect to ``broker.frontend`` on their
own, such as the C example ``envs/c/examples/cartpole.c`` (docs/c_client.md). The Python
launchers (``python -m relaax_zmq.envs``, ``python -m relaax_zmq.runtime.train``) start no client for
it: ``ExternalClients`` is neither a ``TrainingBase`` nor a ``gymnasium.Env``, so they refuse
it with a ``ConfigError`` naming ``environment.run``.

This folder is not a Python package (no ``__init__.py``): nothing here is installed.
"""


class ExternalClients:
    """Marks an app whose environment clients are external programs (see the module docstring)."""
