"""The gateway's HTTP side: who may open a WebSocket, and the files it serves.

``Handshake.process_request`` runs for every HTTP request before any WebSocket exists:

- an upgrade to ``gateway.path`` passes when its Origin is allowed (none, as from Node;
  the gateway's own pages; ``gateway.origins``), it offers the ``rlx.v1`` subprotocol,
  it offers ``rlx-token.<TOKEN>`` when a token is configured (compared in constant time)
  and fewer than ``max_connections`` are open; else 403, 400, 401 or 503 and nothing opens;
- ``GET /status`` from loopback: the gateway's counters as JSON;
- ``GET /client/...``: the JavaScript client (envs/js/src), so a page needs no npm;
- any other ``GET``: a file of ``gateway.static_dir`` (``index.html`` for a folder).
"""

from __future__ import annotations

import hmac
import importlib.util
import ipaddress
import json
import logging
import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response

from relaax_zmq.protocol.websocket import SUBPROTOCOL, TOKEN_PREFIX

log = logging.getLogger(__name__)

CLIENT_PREFIX = "/client/"


def client_dir() -> Path:
    """The JavaScript client's modules (envs/js/src, installed as relaax_zmq/envs/js/src)."""
    spec = importlib.util.find_spec("relaax_zmq.envs")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "js" / "src"


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a WebSocket request offers, in order."""
    return [
        item
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in parse_subprotocol(value)
    ]


def select_subprotocol(connection: ServerConnection, offered: Any) -> str | None:
    """``rlx.v1`` when offered (``process_request`` already refused requests without it)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class Handshake:
    """The checks and files of the HTTP side (see the module docstring).

    Args:
        path: the WebSocket endpoint's URL path.
        origins: allowed Origin values besides same-origin pages; ``*`` allows any.
        token: the access token connections must offer, or None.
        static_dir: folder served at ``/``, or None.
        max_connections: connections open at once.
        counters: the gateway's counters (``refused`` counts by reason).
        status: the JSON object ``GET /status`` returns.
    """

    def __init__(
        self,
        *,
        path: str,
        origins: tuple[str, ...],
        token: str | None,
        static_dir: Path | None,
        max_connections: int,
        counters: Any,
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.path = path
        self.origins = frozenset(origins)
        self.token = token
        self.static_dir = static_dir.resolve() if static_dir is not None else None
        self.max_connections = max_connections
        self.counters = counters
        self.status = status

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """None lets the WebSocket handshake go on; a Response answers the request instead."""
        url = urlsplit(request.path)
        path = unquote(url.path)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._http_get(connection, path)
        if path != self.path:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "path", f"expected {self.path}")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.headers):
            return self._refuse(connection, HTTPStatus.FORBIDDEN, "origin", f"{origin} not allowed")
        offered = offered_subprotocols(request.headers)
        if SUBPROTOCOL not in offered:
            return self._refuse(
                connection, HTTPStatus.BAD_REQUEST, "subprotocol", f"expected {SUBPROTOCOL} offered"
            )
        if self.token is not None and not self._token_offered(offered):
            return self._refuse(connection, HTTPStatus.UNAUTHORIZED, "token", "no valid token")
        if self.counters.connections_open >= self.max_connections:
            return self._refuse(
                connection,
                HTTPStatus.SERVICE_UNAVAILABLE,
                "full",
                f"{self.max_connections} connections open",
            )
        return None

    def _origin_allowed(self, origin: str, headers: Headers) -> bool:
        if "*" in self.origins or origin in self.origins:
            return True
        host = headers.get("Host")  # a page the gateway served itself (same origin)
        return host is not None and urlsplit(origin).netloc == host

    def _token_offered(self, offered: list[str]) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        found = False
        for item in offered:
            if item.startswith(TOKEN_PREFIX):
                # every candidate is compared, in constant time, so timing tells nothing
                found |= hmac.compare_digest(item[len(TOKEN_PREFIX) :].encode(), expected)
        return found

    def _refuse(
        self, connection: ServerConnection, status: HTTPStatus, reason: str, text: str
    ) -> Response:
        self.counters.refused[reason] = self.counters.refused.get(reason, 0) + 1
        log.warning("refused a connection from %s: %s: %s", peer_name(connection), reason, text)
        return connection.respond(status, f"{reason}: {text}\n")

    # -------------------------------------------------------------- plain HTTP

    def _http_get(self, connection: ServerConnection, path: str) -> Response:
        if path == "/status":
            if not _is_loopback(connection):
                return connection.respond(HTTPStatus.FORBIDDEN, "status: loopback only\n")
            body = json.dumps(self.status()).encode()
            return _file_response(body, "application/json")
        if path.startswith(CLIENT_PREFIX):
            return self._file(connection, client_dir(), path[len(CLIENT_PREFIX) :])
        if self.static_dir is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "no static_dir is configured\n")
        return self._file(connection, self.static_dir, path.lstrip("/"))

    def _file(self, connection: ServerConnection, root: Path, relative: str) -> Response:
        target = (root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            return connection.respond(HTTPStatus.NOT_FOUND, f"not found: /{relative}\n")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".js", ".mjs"):
            kind = "text/javascript"
        return _file_response(target.read_bytes(), kind)


def _file_response(body: bytes, kind: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(HTTPStatus.OK.value, "OK", headers, body)


def peer_name(connection: ServerConnection) -> str:
    """``host:port`` of the connection's peer, for log lines."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def _is_loopback(connection: ServerConnection) -> bool:
    address = connection.remote_address
    try:
        return address is not None and ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return False
