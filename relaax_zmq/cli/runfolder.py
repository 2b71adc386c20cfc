"""Where a running app keeps its supervisord files and daemon logs: its run folder.

``<app folder>/logs/run/<app file stem>/`` (``logs/`` beside the app file, as the
checkpoints and metrics default to), so that several apps in one folder
(``conf/cartpole.yaml``, ``conf/cartpole-ppo.yaml``) each get their own.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: A unix socket path holds at most this many bytes (sun_path, NUL excluded).
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class RunFolder:
    """The run folder of the app file ``config_path``."""

    config_path: Path

    @classmethod
    def of(cls, config_path: Path) -> RunFolder:
        return cls(Path(config_path).resolve())

    @property
    def root(self) -> Path:
        return self.config_path.parent / "logs" / "run" / self.config_path.stem

    @property
    def supervisord_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisord_log(self) -> Path:
        return self.root / "supervisord.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def logs(self) -> Path:
        """One log per daemon: ``<program>.log``."""
        return self.root / "daemons"

    @property
    def socket(self) -> Path:
        """supervisord's unix socket (in the temp folder when the run folder's path is long)."""
        path = self.root / "supervisor.sock"
        if len(str(path).encode()) <= MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"relaax-zmq-{digest}.sock"

    def log_of(self, program: str) -> Path:
        return self.logs / f"{program}.log"

    def starts_of(self, program: str) -> Path:
        """When supervisord started ``program`` lately (``crashguard``'s restart budget)."""
        return self.root / "starts" / f"{program}.starts"

    def create(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
