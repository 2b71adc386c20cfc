"""The built wheel installs everything under relaax_zmq (extensions too) and no test harness."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def clean_source(dest: Path) -> Path:
    """The repository's files (tracked, or new and not ignored) copied to ``dest``: a build
    there sees no stale build/ folder, so the wheel holds what the sources ship (a module
    moved or split in the tree would otherwise linger in it from build/lib)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = ROOT / name
        if source.is_symlink() or source.is_file():  # deleted but not yet committed: skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    """The wheel built from a clean copy of the sources, and the build's output."""
    out = tmp_path_factory.mktemp("wheel")
    source = clean_source(tmp_path_factory.mktemp("source"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",  # the build backend's warnings too
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (path,) = out.glob("relaax_zmq-*.whl")
    return zipfile.ZipFile(path), build.stdout + build.stderr


@pytest.fixture(scope="module")
def wheel(built) -> zipfile.ZipFile:
    return built[0]


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
        "relaax_zmq/presets/cartpole.yaml",
        "relaax_zmq/presets/bandit-reinforce.yaml",
    } <= set(names)


def test_presets_and_docs_are_package_data_without_build_warnings(built) -> None:
    wheel, output = built
    names = set(wheel.namelist())
    presets = {n for n in names if n.startswith("relaax_zmq/presets/") and n.endswith(".yaml")}
    bundled = {p.name for p in (ROOT / "relaax_zmq" / "presets").glob("*.yaml")}
    assert {n.rpartition("/")[2] for n in presets} == bundled and len(bundled) >= 15
    # the files themselves, not the source tree's links to conf/
    cartpole = (ROOT / "conf" / "cartpole.yaml").read_bytes()
    assert wheel.read("relaax_zmq/presets/cartpole.yaml") == cartpole
    assert "relaax_zmq/presets/__init__.py" in names
    assert not [n for n in names if n.startswith("relaax_zmq/cli/presets/")]
    # the pages the CLI names (new: docs/config.md), reachable in an installed package
    for page in ("config.md", "cli.md", "metrics.md"):
        assert wheel.read(f"relaax_zmq/docs/{page}") == (ROOT / "docs" / page).read_bytes()
    for warning in ("looks like a package", "Package would be ignored", "is absent from"):
        assert warning not in output, warning


def test_no_module_is_shipped_twice(wheel) -> None:
    # a module and a package of the same name (wire.py beside wire/) is a stale leftover
    names = set(wheel.namelist())
    packages = {n.removesuffix("/__init__.py") for n in names if n.endswith("/__init__.py")}
    assert not {p for p in packages if f"{p}.py" in names}
    assert "relaax_zmq/ps/wire/__init__.py" in names


def test_the_fuzz_harness_stays_out_of_the_wheel(wheel) -> None:
    # the atheris harness is run from the repository (python -m tests.fuzz), not installed
    names = wheel.namelist()
    assert not [n for n in names if "fuzz" in n.lower()], "a fuzz harness is in the wheel"
    assert not [n for n in names if n.startswith(("tests/", "relaax_zmq/tests/"))]
    assert not [n for n in names if n.endswith(".py") and b"atheris" in wheel.read(n)]


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


def test_the_built_in_algorithms_are_entry_points_and_examples_stay_out(wheel) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[relaax_zmq.algorithms]" in text
    for name in ("cem", "da3c", "ddpg", "dqn", "ppo", "reinforce", "trpo"):
        assert f"{name} = relaax_zmq.algorithms.{name}:ALGORITHM" in text
    assert "relaax_zmq/runtime/sockets.py" in wheel.namelist()
    assert not [n for n in wheel.namelist() if "examples" in n]


def test_the_javascript_client_is_in_the_wheel_for_the_gateway(wheel) -> None:
    names = set(wheel.namelist())
    shipped = {n.rpartition("/")[2] for n in names if n.startswith("relaax_zmq/envs/js/src/")}
    sources = {p.name for p in (ROOT / "envs" / "js" / "src").rglob("*.js")}
    assert sources and sources <= shipped
    assert "relaax_zmq/envs/js/package.json" in names
    assert not [n for n in names if n.startswith("relaax_zmq/envs/js/test/")]
