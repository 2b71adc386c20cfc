"""The S3 keys file: ``access_key_id`` and ``secret_access_key`` (YAML), never world-readable.

```yaml
access_key_id: AKIAIOSFODNN7EXAMPLE
secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
session_token: ...      # optional (temporary credentials)
```
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from relaax_zmq.checkpoint.errors import CheckpointError

REQUIRED = ("access_key_id", "secret_access_key")
OPTIONAL = ("session_token",)


def load_keys_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"access_key_id": ..., "secret_access_key": ...[, "session_token": ...]}`` from ``path``.

    Refuses a file that others (not owner, not group) may read or write.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CheckpointError(f"S3 keys file {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise CheckpointError(
            f"S3 keys file {path} is accessible by every user (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"S3 keys file {path}: unreadable: {exc}") from exc
    if not isinstance(loaded, dict):
        raise CheckpointError(f"S3 keys file {path}: expected 'key: value' lines")
    unknown = sorted(str(key) for key in loaded if key not in REQUIRED + OPTIONAL)
    if unknown:
        raise CheckpointError(
            f"S3 keys file {path}: unknown keys {unknown} (expected {list(REQUIRED + OPTIONAL)})"
        )
    keys: dict[str, str] = {}
    for key in REQUIRED + OPTIONAL:
        value = loaded.get(key)
        if value is None and key in OPTIONAL:
            continue
        if not isinstance(value, str) or not value:
            raise CheckpointError(f"S3 keys file {path}: {key!r} must be a non-empty string")
        keys[key] = value
    return keys
