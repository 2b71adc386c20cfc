"""Broker daemon: routes RLX sessions from environment clients to workers (relaax_zmq.broker)."""
