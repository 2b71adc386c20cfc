"""The ``gateway`` section: the WebSocket gateway that lets browsers and Node programs be
environment clients (docs/gateway.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path
from relaax_zmq.errors import ConfigError

#: Characters a token may hold: it travels as a WebSocket subprotocol (an HTTP token).
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """WebSocket gateway: listening address, security and per-connection limits."""

    enabled: bool = option(False, doc="run the gateway with the app's servers")
    host: str = option("127.0.0.1", doc="address to listen on (loopback by default)")
    port: int = option(7800, ge=0, le=65535, doc="TCP port (0: any free port)")
    path: str = option("/rlx", doc="URL path of the WebSocket endpoint")
    origins: tuple[str, ...] = option(
        (), doc="Origin values allowed besides the gateway's own pages; '*' allows any"
    )
    token: str | None = option(None, doc="access token every connection must offer")
    token_file: Path | None = option(None, doc="file holding the token (instead of token)")
    static_dir: Path | None = option(None, doc="folder of files served over HTTP at /")
    tls_cert: Path | None = option(None, doc="PEM certificate: serve wss:// directly")
    tls_key: Path | None = option(None, doc="PEM private key of tls_cert")
    max_message_bytes: int = option(
        16 << 20, ge=1024, doc="largest legal message; twice it closes the connection"
    )
    max_connections: int = option(1000, ge=1, doc="connections open at once")
    max_in_flight: int = option(64, ge=1, doc="requests of one connection awaiting replies")
    rate_limit: float = option(20_000.0, gt=0, doc="messages per second of one connection")
    rate_burst: int = option(1000, ge=1, doc="messages one connection may send at once")
    byte_rate_limit: float = option(
        256.0 * (1 << 20), gt=0, doc="bytes per second of one connection"
    )
    idle_timeout: float = option(600.0, gt=0, doc="close a connection silent this long")
    send_timeout: float = option(10.0, gt=0, doc="close a connection not reading this long")
    ping_interval: float = option(20.0, gt=0, doc="seconds between keepalive pings")

    def validate_config(self, path: str) -> None:
        if not _PATH.match(self.path) or self.path == "/":
            raise ConfigError(
                key_path(path, "path"), f"expected a URL path such as '/rlx', got {self.path!r}"
            )
        if self.token is not None and self.token_file is not None:
            raise ConfigError(
                key_path(path, "token_file"), "expected token or token_file, not both"
            )
        if self.token is not None and not TOKEN_PATTERN.match(self.token):
            raise ConfigError(
                key_path(path, "token"),
                "expected 16-256 characters of A-Z a-z 0-9 _ - "
                f"(secrets.token_urlsafe() makes one), got {len(self.token)} characters",
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(key_path(path, "tls_key"), "expected tls_cert and tls_key together")
        for i, origin in enumerate(self.origins):
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ConfigError(
                    f"{key_path(path, 'origins')}[{i}]",
                    f"expected '*' or scheme://host[:port] such as 'https://example.com', "
                    f"got {origin!r}",
                )

    def access_token(self) -> str | None:
        """The configured token (read from ``token_file`` when given); ConfigError if unusable."""
        if self.token_file is None:
            return self.token
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                "gateway.token_file", f"cannot read {self.token_file}: {exc}"
            ) from None
        if not TOKEN_PATTERN.match(token):
            raise ConfigError(
                "gateway.token_file",
                f"expected 16-256 characters of A-Z a-z 0-9 _ -, got {len(token)} characters",
            )
        return token

    @property
    def frame_limit(self) -> int:
        """Largest WebSocket message accepted before the connection is closed (1009)."""
        return 2 * self.max_message_bytes
