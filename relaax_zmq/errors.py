"""The exception hierarchy shared by every part of relaax-zmq."""

from __future__ import annotations


class RelaaxError(Exception):
    """Base class of every error raised by relaax-zmq."""


class ProtocolError(RelaaxError):
    """A message does not follow the RLX protocol.

    ``field`` names the part of the message that is wrong, ``expected`` and
    ``actual`` say what the decoder wanted and what it found.
    """

    def __init__(self, field: str, expected: object, actual: object, detail: str = "") -> None:
        self.field = field
        self.expected = expected
        self.actual = actual
        self.detail = detail
        text = f"{field}: expected {expected}, got {actual}"
        super().__init__(f"{text} ({detail})" if detail else text)


class ConfigError(RelaaxError):
    """A configuration value is missing, unknown, of the wrong type or impossible.

    ``path`` is the full dotted path of the key (``workers.count``).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class AuthError(RelaaxError):
    """A peer failed authentication or a key is missing or unsafe."""
