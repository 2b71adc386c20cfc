"""One daemon's HTTP endpoint: ``GET /metrics`` (Prometheus' text format from the daemon's own
registry), ``GET /healthz`` (200 while the daemon serves), 404 for anything else.

The server runs in a daemon thread of its own (``wsgiref`` with a thread per request); a scrape
only reads what the daemon published, so it never blocks or breaks the daemon's loop, and a
failed scrape is answered 500 and logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from relaax_zmq.observability.families import DaemonCollector

log = logging.getLogger(__name__)

#: What ``GET /healthz`` answers while the daemon serves.
HEALTHY = b"ok\n"
#: How often the server looks for its shutdown (what a daemon's stop waits, at most).
POLL_S = 0.1


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """Scrapes are not logged (one every few seconds, forever)."""


def _routes(metrics: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: /metrics, /healthz, 404."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [HEALTHY]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics or /healthz\n"]

    return app


class MetricsEndpoint:
    """An HTTP server for one daemon's metrics at ``host:port`` (0: any free port).

    ``collector`` (a ``DaemonCollector``) is read at each scrape. ``start`` binds and serves
    from a thread, ``close`` stops the server and joins the thread.
    """

    def __init__(self, host: str, port: int, collector: DaemonCollector) -> None:
        self.host = host
        self.requested_port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.collector = collector
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after ``start``)."""
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsEndpoint:
        app = _routes(make_wsgi_app(self.registry))
        self._server = make_server(
            self.host, self.requested_port, app, server_class=_Server, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_S,), name="prometheus", daemon=True
        )
        self._thread.start()
        log.info("prometheus /metrics at %s (role %s)", self.url, self.collector.role)
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
