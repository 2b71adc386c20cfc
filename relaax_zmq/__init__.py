"""relaax-zmq: distributed reinforcement learning over a ZeroMQ message bus."""

from relaax_zmq.errors import AuthError, ConfigError, ProtocolError, RelaaxError

__version__ = "0.1.0"

__all__ = ["AuthError", "ConfigError", "ProtocolError", "RelaaxError", "__version__"]
