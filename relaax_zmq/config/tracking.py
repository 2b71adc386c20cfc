"""The experiment-tracking keys of the ``metrics`` section: ``metrics.mlflow`` and
``metrics.wandb`` (each null by default: off). docs/config.md is the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path, mismatch
from relaax_zmq.errors import ConfigError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SQLITE = "sqlite:///"


class TrackingUri(str):
    """An MLflow tracking URI with its scheme: ``sqlite:///mlflow.db``, ``http://host:5000``.

    A relative sqlite path (``sqlite:///runs/mlflow.db``) resolves against the app folder.
    """

    __slots__ = ()
    config_type_name = "a tracking URI (sqlite:///path.db, file:/abs/mlruns, http://host:port)"

    @classmethod
    def from_config_value(cls, value: object, path: str, base_dir: Path | None) -> TrackingUri:
        if not isinstance(value, str):
            raise mismatch(cls, value, path)
        if not _SCHEME.match(value):
            raise ConfigError(path, f"expected {cls.config_type_name}, got {value!r}")
        if value.startswith(_SQLITE) and base_dir is not None:
            file = Path(value[len(_SQLITE) :])
            if not file.is_absolute() and str(file) != ":memory:":
                value = f"{_SQLITE}{base_dir / file}"
        return cls(value)


def _check_name(path: str, value: str) -> None:
    if not value.strip():
        raise ConfigError(path, f"expected a non-empty name, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class MlflowConfig:
    """MLflow: every scalar of the event files also goes to one MLflow run per collector start."""

    enabled: bool = option(True, doc="false: keep the settings, send nothing")
    tracking_uri: TrackingUri | None = option(
        None, doc="where runs are stored; null: MLflow's default (MLFLOW_TRACKING_URI)"
    )
    experiment: str = option("relaax-zmq", doc="experiment name, created when missing")
    run_name: str | None = option(None, doc="null: the folder name of metrics.logdir")

    def validate_config(self, path: str) -> None:
        _check_name(key_path(path, "experiment"), self.experiment)
        if self.run_name is not None:
            _check_name(key_path(path, "run_name"), self.run_name)


@dataclass(frozen=True, kw_only=True)
class WandbConfig:
    """Weights & Biases: every scalar of the event files also goes to one W&B run."""

    enabled: bool = option(True, doc="false: keep the settings, send nothing")
    project: str = option("relaax-zmq", doc="W&B project")
    entity: str | None = option(None, doc="W&B team or user; null: the account's default")
    mode: Literal["online", "offline", "disabled"] | None = option(
        None, doc="null: W&B's default (WANDB_MODE, else online)"
    )
    dir: Path | None = option(None, doc="W&B's local files go under <dir>/wandb; null: logdir")
    run_name: str | None = option(None, doc="null: the folder name of metrics.logdir")

    def validate_config(self, path: str) -> None:
        _check_name(key_path(path, "project"), self.project)
        for name in ("entity", "run_name"):
            value = getattr(self, name)
            if value is not None:
                _check_name(key_path(path, name), value)
