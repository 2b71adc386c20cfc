"""The worker daemon: hosts blocks of agent sessions for the broker (docs/exchange.md).

``SessionHost`` is the socket-free core (also used in-process); ``Worker`` runs
it on the broker link; ``python -m relaax_zmq.worker`` is the daemon.
"""

from relaax_zmq.worker.host import Block, MetricStat, Reply, Request, SessionHost
from relaax_zmq.worker.worker import Worker, default_name

__all__ = ["Block", "MetricStat", "Reply", "Request", "SessionHost", "Worker", "default_name"]
