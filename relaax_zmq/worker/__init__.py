"""The worker daemon: hosts blocks of agent sessions for the broker (docs/exchange.md).

``SessionHost`` is the socket-free core (also used in-process), ``Batcher`` the
requests of one drain and ``broker_link`` the link's state (register, heartbeat,
fence); ``Worker`` wires them to the broker link; ``python -m relaax_zmq.worker``
is the daemon.
"""

from relaax_zmq.worker.batcher import Batcher
from relaax_zmq.worker.blocks import Block, HostCounters, MetricStat, Reply, Request
from relaax_zmq.worker.broker_link import LinkClock, LinkCounters
from relaax_zmq.worker.host import SessionHost
from relaax_zmq.worker.worker import Worker, default_name

__all__ = [
    "Batcher",
    "Block",
    "HostCounters",
    "LinkClock",
    "LinkCounters",
    "MetricStat",
    "Reply",
    "Request",
    "SessionHost",
    "Worker",
    "default_name",
]
