"""Shared fixtures: both codec backends (and a guard for the compiled one), the benchmarks as
modules, and a real S3-compatible server (moto) on loopback with a boto3 client and buckets.

CI sets RELAAX_ZMQ_REQUIRE_EXTENSION=1 so that a missing extension fails the
run instead of silently skipping the compiled half of the suite.
"""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

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


# -- S3: a real S3-compatible server (moto) on loopback, for boto3 ------------------------------

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_buckets = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1 (fake credentials in the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_ENV.items():
            patch.setenv(key, value)
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(key, raising=False)
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def client(endpoint: str) -> Any:
    """A boto3 S3 client of the moto server."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(client: Any) -> str:
    """A fresh, empty bucket."""
    name = f"ckpt-test-{next(_buckets)}"
    client.create_bucket(Bucket=name)
    return name
