"""The replay server (Ape-X): actors insert prioritized transitions, a learner samples them
and sends back new priorities.

``table.py`` holds the prioritized storage (``PrioritizedTable``), ``limiter.py`` the rate
limiting of inserts against samples (``RateLimiter``); both are pure cores, without sockets.
``server.py`` is the daemon (``python -m relaax_zmq.replay --shard I``: ``ReplayServer``
around ``ReplayCore``, the table and limiter behind the PULL of transitions and the ROUTER
of samples and priorities), ``client.py`` the learner's side (``ReplayClient``); both speak
the experience wire (``relaax_zmq.learner.wire``).
"""

from relaax_zmq.replay.limiter import RateLimiter
from relaax_zmq.replay.table import PrioritizedTable, SampledItems, schema_from

__all__ = ["PrioritizedTable", "RateLimiter", "SampledItems", "schema_from"]
