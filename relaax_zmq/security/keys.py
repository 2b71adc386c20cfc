"""CURVE key files: generate, list, revoke, load (fail closed), and the allow-list by role.

Layout of ``security.keys_dir``::

    <role>/<name>.key          public key (ZeroMQ certificate format, any mode)
    <role>/<name>.key_secret   public + secret key, mode 0600 (refused when others can read it)
    revoked                    one revoked public key a line: ``<z85 key> <role>/<name> <when>``

A role's folder is its allow-list: every public key in ``client/`` may connect where clients
may. A revoked key is refused even when its public file is still (or again) in an allow-list.
The files are the ZeroMQ certificate format (``zmq.auth.load_certificate`` reads them).
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from relaax_zmq.errors import AuthError

#: Key-pair roles: the three servers (they bind) and the three kinds of peers (they connect).
SERVER_ROLES = ("broker", "shard", "metrics", "learner", "replay")
PEER_ROLES = ("client", "worker", "admin")
ROLES = SERVER_ROLES + PEER_ROLES
PUBLIC_SUFFIX, SECRET_SUFFIX = ".key", ".key_secret"
REVOKED_FILE = "revoked"
#: Mode bits of a secret key file that give group or others access.
UNSAFE_BITS = 0o077
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class KeyInfo:
    """One key pair (or public key) found in a keys folder."""

    role: str
    name: str
    public_key: str
    has_secret: bool
    secret_mode: int | None
    revoked: bool


def check_role(role: str) -> str:
    """``role`` when it is one of ``ROLES``; ``ValueError`` naming the choices otherwise."""
    if role not in ROLES:
        raise ValueError(f"key role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def check_name(name: str) -> str:
    """``name`` when it is a safe file name (letters, digits, ``_.-``, at most 64)."""
    if not _NAME.match(name):
        raise ValueError(f"key name: expected letters, digits, '_', '.', '-' (1-64), got {name!r}")
    return name


def public_path(keys_dir: Path, role: str, name: str) -> Path:
    return Path(keys_dir) / check_role(role) / (check_name(name) + PUBLIC_SUFFIX)


def secret_path(keys_dir: Path, role: str, name: str) -> Path:
    return Path(keys_dir) / check_role(role) / (check_name(name) + SECRET_SUFFIX)


def generate(keys_dir: Path, role: str, name: str | None = None, *, force: bool = False) -> KeyInfo:
    """Write a new key pair for ``role`` (named ``name``, default the role); its description.

    The secret file is created with mode 0600 (never readable by others, not even briefly).
    ``FileExistsError`` when the pair exists and ``force`` is false.
    """
    name = name or role
    public, secret = public_path(keys_dir, role, name), secret_path(keys_dir, role, name)
    if not force and (public.exists() or secret.exists()):
        raise FileExistsError(f"{secret} already exists (replace it with --force)")
    public.parent.mkdir(parents=True, exist_ok=True)
    public_key, secret_key = zmq.curve_keypair()
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _write_certificate(secret, role, name, when, public_key, secret_key)
    _write_certificate(public, role, name, when, public_key, None)
    return KeyInfo(role, name, public_key.decode(), True, 0o600, False)


def revoke(keys_dir: Path, role: str, name: str) -> KeyInfo:
    """Add the public key of ``role/name`` to the revoked list and delete its files.

    Daemons refuse it once they reload (``KeyRing``): at its next handshake and, on the
    connections it already has, from its next message (``security.gate``).
    """
    public = public_path(keys_dir, role, name)
    source = public if public.exists() else secret_path(keys_dir, role, name)
    if not source.exists():
        raise FileNotFoundError(f"no key {role}/{name} in {keys_dir} (expected {public})")
    public_key = _load(source)[0].decode()
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(Path(keys_dir) / REVOKED_FILE, "a", encoding="ascii") as out:
        out.write(f"{public_key} {role}/{name} {when}\n")
    for path in (public, secret_path(keys_dir, role, name)):
        path.unlink(missing_ok=True)
    return KeyInfo(role, name, public_key, False, None, True)


def revoked_keys(keys_dir: Path) -> dict[bytes, str]:
    """Revoked public keys (z85) -> ``role/name`` they belonged to."""
    path = Path(keys_dir) / REVOKED_FILE
    if not path.exists():
        return {}
    keys: dict[bytes, str] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            keys[parts[0].encode()] = parts[1] if len(parts) > 1 else "?"
    return keys


def list_keys(keys_dir: Path) -> list[KeyInfo]:
    """Every key in ``keys_dir`` by role and name, then the revoked ones no longer on disk."""
    revoked = revoked_keys(keys_dir)
    found: list[KeyInfo] = []
    for role in ROLES:
        folder = Path(keys_dir) / role
        names = {
            p.name.removesuffix(SECRET_SUFFIX).removesuffix(PUBLIC_SUFFIX) for p in _files(folder)
        }
        for name in sorted(names):
            public, secret = folder / (name + PUBLIC_SUFFIX), folder / (name + SECRET_SUFFIX)
            key = _load(public if public.exists() else secret)[0]
            mode = stat.S_IMODE(secret.stat().st_mode) if secret.exists() else None
            found.append(KeyInfo(role, name, key.decode(), secret.exists(), mode, key in revoked))
    on_disk = {k.public_key.encode() for k in found}
    for key, owner in revoked.items():
        if key not in on_disk:
            role, _, name = owner.partition("/")
            found.append(KeyInfo(role, name, key.decode(), False, None, True))
    return found


def load_key_pair(keys_dir: Path, role: str, name: str) -> tuple[bytes, bytes]:
    """(public, secret) of ``role/name``, z85; ``AuthError`` naming the file when it is
    missing, unreadable, readable by others or revoked (fail closed)."""
    path = secret_path(keys_dir, role, name)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise AuthError(
            f"secret key {path} is missing (create it: relaax-zmq keys generate {role} {name})"
        ) from None
    if mode & UNSAFE_BITS:
        raise AuthError(
            f"secret key {path} has mode {mode:04o}: others can read it; "
            f"expected 0600 (chmod 600 {path})"
        )
    public, secret = _load(path)
    if secret is None:
        raise AuthError(f"secret key {path}: expected a secret-key line, found none")
    if zmq.curve_public(secret) != public:
        raise AuthError(f"secret key {path}: its public key does not match its secret key")
    if public in revoked_keys(keys_dir):
        raise AuthError(f"key {role}/{name} ({path}) is revoked")
    return public, secret


def load_public_key(keys_dir: Path, role: str, name: str) -> bytes:
    """The public key (z85) of ``role/name``; ``AuthError`` when missing or revoked."""
    path = public_path(keys_dir, role, name)
    if not path.exists():
        raise AuthError(
            f"public key {path} is missing (copy it from the host that generated it: "
            f"relaax-zmq keys generate {role} {name})"
        )
    public = _load(path)[0]
    if public in revoked_keys(keys_dir):
        raise AuthError(f"key {role}/{name} ({path}) is revoked")
    return public


class KeyRing:
    """The allowed public keys by role, minus the revoked ones; reloads when the files change.

    ``lookup`` checks the files' modification times at most every ``reload_interval`` seconds
    (``reload`` forces it, e.g. from a SIGHUP handler). Thread-safe.
    """

    def __init__(self, keys_dir: Path, reload_interval: float = 1.0) -> None:
        self.keys_dir = Path(keys_dir)
        self.reload_interval = reload_interval
        self.reloads = 0  #: times the files were read
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._checked = -float("inf")
        self._allowed: dict[bytes, tuple[str, str]] = {}
        self._revoked: dict[bytes, str] = {}
        self.refresh()

    def lookup(self, public_key: bytes) -> tuple[str, str] | str:
        """(role, name) of an allowed z85 key, else the reason: ``"revoked"`` or ``"unknown"``."""
        with self._lock:
            if time.monotonic() - self._checked >= self.reload_interval:
                self._refresh_locked()
            if public_key in self._revoked:
                return "revoked"
            return self._allowed.get(public_key, "unknown")

    def refresh(self) -> bool:
        """Reload when a file changed; whether it did."""
        with self._lock:
            return self._refresh_locked()

    def reload(self) -> None:
        """Read the files again now."""
        with self._lock:
            self._signature = None
            self._refresh_locked()

    def _refresh_locked(self) -> bool:
        self._checked = time.monotonic()
        signature = self._file_signature()
        if signature == self._signature:
            return False
        allowed: dict[bytes, tuple[str, str]] = {}
        for role in ROLES:
            for path in _files(self.keys_dir / role):
                if path.name.endswith(PUBLIC_SUFFIX):
                    try:
                        allowed[_load(path)[0]] = (role, path.name.removesuffix(PUBLIC_SUFFIX))
                    except (OSError, AuthError):
                        continue  # half-written or foreign: not allowed
        self._allowed, self._revoked = allowed, revoked_keys(self.keys_dir)
        self._signature = signature
        self.reloads += 1
        return True

    def _file_signature(self) -> tuple[tuple[str, int, int], ...]:
        paths = [self.keys_dir / REVOKED_FILE]
        for role in ROLES:
            paths += _files(self.keys_dir / role)
        entries = []
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(entries)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    suffixes = (PUBLIC_SUFFIX, SECRET_SUFFIX)
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffixes))


def _load(path: Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except ValueError as exc:
        raise AuthError(f"{path}: not a ZeroMQ certificate ({exc})") from None


def _write_certificate(
    path: Path, role: str, name: str, when: str, public: bytes, secret: bytes | None
) -> None:
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ZeroMQ CURVE {kind} Certificate of {role}/{name}, relaax-zmq, {when}",
        "#   DO NOT SHARE OR CHANGE THE MODE OF THIS FILE" if secret else "#   Safe to share",
        "",
        "metadata",
        f'    role = "{role}"',
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
