"""RELAAX_ZMQ_BACKEND selects the backend; a missing extension falls back with one warning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

REPORT = "from relaax_zmq import kernels, protocol; import json; print(json.dumps([protocol.BACKEND, kernels.BACKEND]))"


def run_python(code: str, backend: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("RELAAX_ZMQ_BACKEND", None)
    if backend is not None:
        env["RELAAX_ZMQ_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("backend", "expected"), [("python", "python"), ("cython", "cython"), (None, "cython")]
)
def test_environment_variable_selects_the_backend(backend, expected) -> None:
    pytest.importorskip("relaax_zmq._codec")
    pytest.importorskip("relaax_zmq._kernels")
    done = run_python(REPORT, backend)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [expected, expected]
    assert "RuntimeWarning" not in done.stderr


def test_unknown_backend_is_refused_by_name() -> None:
    done = run_python(REPORT, "fortran")
    assert done.returncode != 0
    assert "RELAAX_ZMQ_BACKEND: expected one of python, cython, got 'fortran'" in done.stderr


BLOCK_EXTENSIONS = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name in ("relaax_zmq._codec", "relaax_zmq._kernels"):
                raise ImportError("blocked for the test")
    sys.meta_path.insert(0, Block())
    """
)


def test_missing_extension_falls_back_with_one_warning() -> None:
    done = run_python(BLOCK_EXTENSIONS + REPORT, None)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["python", "python"]
    assert done.stderr.count("RuntimeWarning") == 1
    assert "slower reference" in done.stderr


def test_forcing_cython_without_the_extension_fails_loudly() -> None:
    done = run_python(BLOCK_EXTENSIONS + REPORT, "cython")
    assert done.returncode != 0
    assert re.search(
        r"RELAAX_ZMQ_BACKEND=cython but the extension relaax_zmq\._(codec|kernels) cannot be loaded",
        done.stderr,
    )
