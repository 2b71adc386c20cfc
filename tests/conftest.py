"""Shared fixtures: both codec backends, and a guard for the compiled one.

CI sets RELAAX_ZMQ_REQUIRE_EXTENSION=1 so that a missing extension fails the
run instead of silently skipping the compiled half of the suite.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def compiled_module(name: str) -> ModuleType:
    """Import an extension module, skipping (or failing in CI) when it is absent."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("RELAAX_ZMQ_REQUIRE_EXTENSION") == "1":
            raise
        pytest.skip(f"extension {name} not built: {exc}")


@pytest.fixture(params=["python", "cython"])
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """Each codec backend in turn: the reference and the compiled one."""
    if request.param == "python":
        return importlib.import_module("relaax_zmq.protocol.reference")
    return compiled_module("relaax_zmq._codec")


@pytest.fixture
def reference_codec() -> ModuleType:
    return importlib.import_module("relaax_zmq.protocol.reference")


@pytest.fixture
def compiled_codec() -> ModuleType:
    return compiled_module("relaax_zmq._codec")


@pytest.fixture
def server():
    """A running ``FakeServer`` (tests/fake_server.py), stopped afterwards."""
    from fake_server import FakeServer

    with FakeServer() as fake:
        yield fake


@pytest.fixture
def import_bench(monkeypatch: pytest.MonkeyPatch):
    """``import_bench("ps")``: the module ``bench.ps`` (bench/ is not installed; the
    repository root goes on ``sys.path`` for the test)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.syspath_prepend(root)
    return lambda name: importlib.import_module(f"bench.{name}")
