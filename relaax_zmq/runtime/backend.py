"""Choice between the compiled (Cython) and the reference (pure Python) backend.

Every function of the extension modules has a reference implementation in the
package with the same API. The compiled one is used when it loads; otherwise
the reference, with one warning. ``RELAAX_ZMQ_BACKEND=python|cython`` forces
one: ``cython`` fails loudly when the extension cannot be imported.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

BACKEND_ENV = "RELAAX_ZMQ_BACKEND"
BACKENDS = ("python", "cython")
_warned = False


def requested_backend() -> str | None:
    """The backend forced by ``RELAAX_ZMQ_BACKEND``, or None when unset or empty."""
    value = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not value:
        return None
    if value not in BACKENDS:
        raise ImportError(f"{BACKEND_ENV}: expected one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def load(compiled: str, reference: str) -> ModuleType:
    """Import ``compiled`` (an extension module) or fall back to ``reference``.

    Args:
        compiled: dotted name of the Cython extension module.
        reference: dotted name of the pure Python module with the same API.
    """
    choice = requested_backend()
    if choice == "python":
        return importlib.import_module(reference)
    try:
        return importlib.import_module(compiled)
    except ImportError as exc:
        if choice == "cython":
            raise ImportError(
                f"{BACKEND_ENV}=cython but the extension {compiled} cannot be loaded: {exc}"
            ) from exc
        global _warned
        if not _warned:
            _warned = True
            warnings.warn(
                f"relaax-zmq: extension {compiled} not available ({exc}); "
                f"using the slower reference implementations (set {BACKEND_ENV}=python "
                "to silence this)",
                RuntimeWarning,
                stacklevel=2,
            )
        return importlib.import_module(reference)


def backend_name(module: ModuleType) -> str:
    """``"cython"`` for an extension module, ``"python"`` for a reference one."""
    return "python" if module.__file__ and module.__file__.endswith(".py") else "cython"
