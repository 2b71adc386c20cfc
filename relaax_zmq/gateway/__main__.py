"""``python -m relaax_zmq.gateway --config app.yaml``: run the WebSocket gateway.

Listens at ``gateway.host:port`` and serves until SIGTERM or SIGINT, then closes every
connection (1001) and their blocks at the broker, and exits 0.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from relaax_zmq.errors import ConfigError
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config, parse_daemon_args

from .server import Gateway

PROG = "relaax_zmq.gateway"
log = logging.getLogger(PROG)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, serve, and return the exit status (0 on a stop signal)."""
    args = parse_daemon_args(PROG, "Bridge WebSocket clients (browsers, Node) to the broker.", argv)
    config = load_daemon_config(args.config, "gateway")
    stop = StopFlag().install()
    try:
        gateway = Gateway(config)
        with serve_metrics(config, "gateway", "gateway", gateway.status) as endpoint:
            gateway.prometheus = None if endpoint is None else endpoint.url
            gateway.run(stop)
    except ConfigError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    except OSError as exc:  # the port is taken, a TLS file is missing
        g = config.gateway
        log.error("cannot serve on %s:%d: %s", g.host, g.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
