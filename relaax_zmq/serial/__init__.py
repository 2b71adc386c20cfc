"""Serial mode: the same parts as the daemons, in one process, without sockets.

``SerialParameters`` is the parameter link on the shards' own core, ``AgentBlock``
a block of sessions stepping straight into an agent, ``SerialRunner`` an app's
environments, agent and updates in one thread.
"""

from relaax_zmq.serial.block import AgentBlock
from relaax_zmq.serial.parameters import SerialParameters
from relaax_zmq.serial.runner import SerialRun, SerialRunner

__all__ = ["AgentBlock", "SerialParameters", "SerialRun", "SerialRunner"]
