"""Broker daemon: routes RLX sessions from environment clients to workers (relaax_zmq.broker).

``Broker(config).run(stop)`` serves until ``stop`` is set; ``python -m
relaax_zmq.broker --config app.yaml`` runs it as a daemon. docs/exchange.md is
the contract.
"""

from relaax_zmq.broker.broker import Broker

__all__ = ["Broker"]
