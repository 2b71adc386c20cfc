"""The worker autoscaler (``relaax-zmq autoscale``, the ``autoscale`` config section).

``policy`` decides (pure, no sockets), ``workers`` runs the worker processes of this host,
``autoscaler`` ties them to the broker's status. docs/autoscale.md.
"""

from relaax_zmq.autoscale.autoscaler import Autoscaler, Look
from relaax_zmq.autoscale.policy import Decision, Observation, ScalingPolicy
from relaax_zmq.autoscale.workers import WorkerPool, WorkerProcess

__all__ = [
    "Autoscaler",
    "Decision",
    "Look",
    "Observation",
    "ScalingPolicy",
    "WorkerPool",
    "WorkerProcess",
]
