"""The JavaScript client (envs/js): its Node test suite must pass.

The suite covers the codec against every RLX v1 test vector, the WebSocket envelope, the
proxies against a fake gateway and CartPole against gymnasium's numbers (envs/js/test/).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent.parent / "envs" / "js"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node (>= 20) is not installed: the JS client is untested")
def test_node_suite_passes() -> None:
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"node {version.stdout.strip()} is older than 20: the JS client needs 20+")
    run = subprocess.run(
        [NODE, "--test", "test/"], cwd=JS_DIR, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"node --test failed:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert "# fail 0" in run.stdout, run.stdout[-2000:]
