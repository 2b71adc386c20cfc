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


class AgentError(RelaaxError):
    """The server refused a client's request: ``code`` (``ErrorCode``) and the server's text.

    ``code`` is None when no reply came at all (the request timed out).
    """

    def __init__(self, code: int | None, text: str) -> None:
        self.code = code
        self.text = text
        name = _error_name(code)
        super().__init__(f"{name}: {text}" if text else name)


class EpisodeRestart(RelaaxError):
    """The server lost or moved the session: reset the environment, start a new episode.

    The next update of the session carries no reward.
    """


def _error_name(code: int | None) -> str:
    if code is None:
        return "TIMEOUT"
    from relaax_zmq.protocol.constants import ErrorCode

    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"
