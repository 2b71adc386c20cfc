"""The WebSocket gateway: browsers and Node programs as environment clients (docs/gateway.md).

``python -m relaax_zmq.gateway --config app.yaml`` (or ``relaax-zmq run gateway``) listens
for WebSocket connections and bridges each to the broker's frontend as an ordinary RLX
client; docs/protocol.md, section 8, specifies what travels on the WebSocket.
"""

from relaax_zmq.protocol.websocket import pack, unpack

from .budget import ConnectionBudget
from .server import Gateway, GatewayCounters

__all__ = ["ConnectionBudget", "Gateway", "GatewayCounters", "pack", "unpack"]
