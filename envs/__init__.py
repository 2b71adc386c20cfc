"""Environment clients and runners (relaax_zmq.envs)."""
