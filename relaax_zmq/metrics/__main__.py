"""``python -m relaax_zmq.metrics --config app.yaml``: run the metrics collector.

Binds ``metrics.endpoint``, writes TensorBoard event files under ``metrics.logdir``, flushes
every ``metrics.flush_interval`` seconds; on SIGTERM or SIGINT it flushes and exits 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import zmq

from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.metrics.collector import Collector
from relaax_zmq.observability import serve_metrics
from relaax_zmq.runtime.daemon import StopFlag, load_daemon_config, parse_daemon_args

PROG = "relaax-zmq-metrics"


def main(argv: Sequence[str] | None = None) -> int:
    """Collect metrics until a signal stops the collector; the exit status."""
    args = parse_daemon_args(PROG, "Collect metrics into TensorBoard event files.", argv)
    config = load_daemon_config(args.config, PROG)
    stop = StopFlag().install()
    try:
        collector = Collector(config)
        with serve_metrics(config, "collector", "collector", collector.stats):
            collector.run(stop)
    except (zmq.ZMQError, AuthError) as exc:
        raise SystemExit(f"{PROG}: {config.metrics.endpoint}: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"{PROG}: {config.metrics.logdir}: {exc}") from None
    except ConfigError as exc:  # a tracker's extra is missing or its run cannot start
        raise SystemExit(f"{PROG}: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
