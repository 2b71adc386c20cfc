"""Import user code from a file or a package folder, under a name unique to its path."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_path(path: Path, prefix: str) -> ModuleType:
    """Import ``path`` (a ``.py`` file, or a folder with ``__init__.py`` as a package).

    The module is named ``<prefix>_<stem>_<hash of the absolute path>`` and imported
    once per process. Raises ``ImportError`` when ``path`` cannot be loaded.
    """
    path = path.resolve()
    package = path.is_dir()
    source = path / "__init__.py" if package else path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"{prefix}_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    locations = [str(path)] if package else None
    spec = importlib.util.spec_from_file_location(
        name, source, submodule_search_locations=locations
    )
    if spec is None or spec.loader is None or not source.is_file():
        raise ImportError(f"cannot load {str(source)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
