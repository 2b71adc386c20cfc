"""relaax-zmq: distributed reinforcement learning over a ZeroMQ message bus.

``learn``, ``evaluate`` and ``Policy`` (the Python API, ``relaax_zmq.api``) are imported
on first use, so that the daemons and the protocol do not pay for torch and gymnasium.
"""

from typing import Any

from relaax_zmq.errors import AuthError, ConfigError, ProtocolError, RelaaxError

__version__ = "0.1.0"

#: Names of the Python API, served from relaax_zmq.api when first asked for.
_API = ("learn", "evaluate", "Policy", "Run", "EvalCallback", "Evaluation", "Progress")

__all__ = ["AuthError", "ConfigError", "ProtocolError", "RelaaxError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from relaax_zmq import api

        return getattr(api, name)
    raise AttributeError(f"module 'relaax_zmq' has no attribute {name!r}")
