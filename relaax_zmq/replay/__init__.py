"""The replay server (Ape-X): actors insert prioritized transitions, a learner samples them
and sends back new priorities.

``table.py`` holds the prioritized storage (``PrioritizedTable``), ``limiter.py`` the rate
limiting of inserts against samples (``RateLimiter``); both are pure cores, without sockets.
The daemon and its wire follow on top of them.
"""

from relaax_zmq.replay.limiter import RateLimiter
from relaax_zmq.replay.table import PrioritizedTable, SampledItems, schema_from

__all__ = ["PrioritizedTable", "RateLimiter", "SampledItems", "schema_from"]
