"""Sharded parameter servers (docs/parameter_servers.md).

The model is one flat float32 vector cut into contiguous slices
(``shard_bounds``); ``Shard`` serves one slice (``python -m relaax_zmq.ps --config
app.yaml --shard I``), ``ParameterClient`` is a worker's link to all of them,
``relaax_zmq.ps.wire`` is what they say to each other. The algorithm's side is
``relaax_zmq.core``.
"""

from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.ps.partition import Slice, shard_bounds
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.ps.shard import Shard
from relaax_zmq.ps.state import ShardCheckpoints, ShardState

__all__ = [
    "ParameterClient",
    "Shard",
    "ShardCheckpoints",
    "ShardState",
    "Slice",
    "load_spec",
    "shard_bounds",
]
