"""Environment clients of the exchange (docs/exchange.md, "Clients").

``AgentProxy`` (one session), ``VectorAgentProxy`` (N sessions in one message
per step) and ``TrainingBase`` (the episode loop with reconnect).
"""

from relaax_zmq.client.backoff import Backoff
from relaax_zmq.client.block import BlockProxy
from relaax_zmq.client.connection import Connection, RequestTimeout
from relaax_zmq.client.metrics import MetricsBuffer
from relaax_zmq.client.proxy import AgentProxy
from relaax_zmq.client.training import TrainingBase
from relaax_zmq.client.vector import VectorAgentProxy
from relaax_zmq.errors import AgentError, EpisodeRestart

__all__ = [
    "AgentError",
    "AgentProxy",
    "Backoff",
    "BlockProxy",
    "Connection",
    "EpisodeRestart",
    "MetricsBuffer",
    "RequestTimeout",
    "TrainingBase",
    "VectorAgentProxy",
]
