"""``python -m relaax_zmq.broker --config app.yaml``: run the broker until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import zmq

from relaax_zmq.errors import AuthError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config, parse_daemon_args

from .broker import Broker

PROG = "relaax_zmq.broker"
log = logging.getLogger(PROG)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, serve, and return the exit status (0 on a stop signal)."""
    args = parse_daemon_args(PROG, "Route RLX sessions from environment clients to workers.", argv)
    config = load_daemon_config(args.config, "broker")
    stop = StopFlag().install()
    broker = Broker(config)
    try:
        with serve_metrics(config, "broker", "broker", lambda: broker.published) as endpoint:
            broker.publish = endpoint is not None
            if endpoint is not None:  # the admin status names it (port 0: any free port)
                broker.endpoints["prometheus"] = endpoint.url
            broker.run(stop)
    except (zmq.ZMQError, AuthError, OSError) as exc:
        log.error("cannot serve: %s", exc)
        return 1
    if stop.signal is not None:
        log.info("stopped by signal %d", stop.signal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
