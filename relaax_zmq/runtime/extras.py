"""Optional parts installed as extras (``pip install 'relaax-zmq[s3]'``): import them or say so."""

from __future__ import annotations

import importlib
from types import ModuleType

from relaax_zmq.errors import RelaaxError


class MissingExtra(RelaaxError, ImportError):
    """A feature was used without the extra that brings its package."""

    def __init__(self, module: str, extra: str, feature: str, reason: str = "") -> None:
        self.module = module
        self.extra = extra
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"{feature} needs the {module} package, which cannot be imported{detail}: "
            f"pip install 'relaax-zmq[{extra}]'"
        )


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported; ``MissingExtra`` naming ``extra`` when it cannot be.

    >>> boto3 = require_extra("boto3", "s3", "S3 checkpoints")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module, extra, feature, str(exc)) from None
