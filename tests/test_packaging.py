"""The built wheel installs everything under relaax_zmq, extensions included."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (path,) = out.glob("relaax_zmq-*.whl")
    return zipfile.ZipFile(path)


def test_every_module_lives_under_relaax_zmq(wheel) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"relaax_zmq"}


def test_design_folders_map_into_the_package(wheel) -> None:
    names = set(wheel.namelist())
    for package in ("broker", "algorithms", "envs", "protocol", "kernels", "config"):
        assert f"relaax_zmq/{package}/__init__.py" in names
    # subpackages and modules found on their own (setup.py lists no package by hand)
    for module in (
        "broker/__main__.py",
        "worker/__main__.py",
        "client/proxy.py",
        "envs/gym_runner.py",
        "testing/linear_policy/agent.py",
    ):
        assert f"relaax_zmq/{module}" in names


def test_extensions_and_data_are_shipped(wheel) -> None:
    names = wheel.namelist()
    assert any(n.startswith("relaax_zmq/_codec.") and n.endswith(".so") for n in names)
    assert any(n.startswith("relaax_zmq/_kernels.") and n.endswith(".so") for n in names)
    assert "relaax_zmq/protocol/testdata/rlx_v1_vectors.txt" in names
    assert "relaax_zmq/py.typed" in names
    assert {
        "relaax_zmq/cli/presets/cartpole.yaml",
        "relaax_zmq/cli/presets/bandit-reinforce.yaml",
    } <= set(names)


def test_torch_is_pinned_below_the_cuda_pulling_releases(wheel) -> None:
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in wheel.read(meta).decode().splitlines()
        if line.startswith("Requires-Dist: torch")
    ]
    assert requires and requires[0] == "Requires-Dist: torch<2.14,>=2.3"
    # an extra that brings a torch user (SB3) pins it the same way
    assert all(r.startswith("Requires-Dist: torch<2.14,>=2.3") for r in requires), requires
