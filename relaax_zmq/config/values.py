"""Checked string types of the config (ZeroMQ endpoints, runner specs) and port checks.

A type with a ``from_config_value(value, path, base_dir)`` classmethod converts
itself; ``from_mapping`` calls it for fields annotated with that type.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from relaax_zmq.config.describe import mismatch
from relaax_zmq.errors import ConfigError

_HOST = re.compile(r"^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?)$")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*$")
_SPEC = re.compile(rf"^(?P<module>.+):(?P<attr>{_IDENT})$")
#: sun_path holds 108 bytes on Linux, one of them the terminating NUL.
MAX_IPC_PATH_BYTES = 107
BUILTIN_RUNNERS = ("gym", "bandit")


def check_port(port: int, path: str) -> None:
    """A TCP port in 1..65535."""
    if not 1 <= port <= 65535:
        raise ConfigError(path, f"expected a port in 1..65535, got {port}")


def check_host(host: str, path: str) -> None:
    """A host name, an IPv4 address, ``*`` (every interface) or a bracketed IPv6 address."""
    bracketed = host.startswith("[") and host.endswith("]")
    if _is_ipv6(host[1:-1]) if bracketed else _HOST.match(host) is not None:
        return
    raise ConfigError(path, f"expected a host name, IPv4 address, * or [IPv6], got {host!r}")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def expand_path(text: str, path: str) -> Path:
    """``Path(text)`` with ``~`` or ``~user`` expanded."""
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # ~user of an unknown user, or no home folder
        raise ConfigError(path, f"cannot expand {text!r}: {exc}") from None


class ZmqEndpoint(str):
    """A checked ZeroMQ endpoint: ``tcp://host:port``, ``ipc://path`` or ``inproc://name``.

    A relative ipc path resolves against the app folder.
    """

    __slots__ = ()
    config_type_name = "an endpoint (tcp://host:port, ipc://path or inproc://name)"

    @classmethod
    def from_config_value(cls, value: object, path: str, base_dir: Path | None) -> ZmqEndpoint:
        if not isinstance(value, str):
            raise mismatch(cls, value, path)
        transport, sep, rest = value.partition("://")
        if not sep or not rest or transport not in ("tcp", "ipc", "inproc"):
            raise ConfigError(path, f"expected {cls.config_type_name}, got {value!r}")
        if transport == "tcp":
            host, colon, port = rest.rpartition(":")
            if not colon or not host or not (port.isascii() and port.isdigit()):
                raise ConfigError(path, f"expected tcp://host:port (numeric port), got {value!r}")
            check_host(host, path)
            check_port(int(port), path)
        if transport == "ipc":
            file = expand_path(rest, path)
            if base_dir is not None and not file.is_absolute():
                value = f"ipc://{base_dir / file}"
            if len(value.encode(errors="replace")) - len("ipc://") > MAX_IPC_PATH_BYTES:
                limit = f"at most {MAX_IPC_PATH_BYTES} bytes"
                raise ConfigError(path, f"expected an ipc path of {limit}, got {value!r}")
        return cls(value)

    @property
    def transport(self) -> str:
        """``tcp``, ``ipc`` or ``inproc``."""
        return self.partition("://")[0]

    @property
    def host(self) -> str:
        """The host of a tcp endpoint, the path or name otherwise."""
        rest = self.partition("://")[2]
        return rest.rpartition(":")[0] if self.transport == "tcp" else rest

    @property
    def port(self) -> int | None:
        """The port of a tcp endpoint, None otherwise."""
        return int(self.rpartition(":")[2]) if self.transport == "tcp" else None


class RunnerSpec(str):
    """Which client runner drives the environment: a built-in name or ``module:ClassName``.

    ``module`` is ``path/to/file.py`` (relative to the app folder; it must exist)
    or a dotted module name. A relative file is stored resolved.
    """

    __slots__ = ()
    config_type_name = "'gym', 'bandit' or 'path/to/module.py:ClassName'"

    @classmethod
    def from_config_value(cls, value: object, path: str, base_dir: Path | None) -> RunnerSpec:
        if not isinstance(value, str):
            raise mismatch(cls, value, path)
        if value in BUILTIN_RUNNERS:
            return cls(value)
        m = _SPEC.match(value)
        if m is None:
            raise ConfigError(path, f"expected {cls.config_type_name}, got {value!r}")
        module = m["module"]
        if module.endswith(".py"):
            file = expand_path(module, path)
            file = base_dir / file if base_dir is not None and not file.is_absolute() else file
            if not file.is_file():
                raise ConfigError(path, f"expected an existing Python file, got {str(file)!r}")
            return cls(f"{file}:{m['attr']}")
        if not _DOTTED.match(module):
            raise ConfigError(path, f"expected a .py file or dotted module name, got {module!r}")
        return cls(value)

    @property
    def builtin(self) -> bool:
        """True for a runner that ships with relaax-zmq."""
        return self in BUILTIN_RUNNERS

    @property
    def module(self) -> str:
        """The file path or dotted module of a custom runner ("" for a built-in one)."""
        return "" if self.builtin else self.rpartition(":")[0]

    @property
    def attr(self) -> str:
        """The class name of a custom runner ("" for a built-in one)."""
        return "" if self.builtin else self.rpartition(":")[2]


def check_port_ranges(ranges: list[tuple[str, int, int]]) -> None:
    """Refuse overlapping TCP port ranges; each item is (key path, first port, last port)."""
    for i, (path, first, last) in enumerate(ranges):
        for other, o_first, o_last in ranges[:i]:
            if first <= o_last and o_first <= last:
                raise ConfigError(
                    path,
                    f"uses {_ports(first, last)}, already taken by {other} "
                    f"({_ports(o_first, o_last)}); every TCP port of the app must differ",
                )


def _ports(first: int, last: int) -> str:
    return f"port {first}" if first == last else f"ports {first}..{last}"
