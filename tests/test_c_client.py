"""librlx, the C client (envs/c): build, codec vectors, client rules, sanitizers, fuzzing, CartPole.

Everything is built once per module into a temporary folder with the Makefile's flags
(-std=c99 -Wall -Wextra -Werror ...). The C programs are the tests proper: test_codec (every
vector of relaax_zmq/protocol/testdata byte for byte, malformed input), test_client (the client
against a fake server), the fuzz target, and the CartPole example against a real system.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from bench.c_client import C_DIR, build_c, c_session, write_c_app
from bench.exchange import exchange
from relaax_zmq.protocol.vectors import VECTOR_FILE, load_vectors
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.watching import global_step

ROOT = Path(__file__).resolve().parents[1]
#: Sanitizer reports fail a run even where the exit status would not tell.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:strict_string_checks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def _zmq_headers() -> bool:
    if Path("/usr/include/zmq.h").exists():
        return True
    pkg = shutil.which("pkg-config")
    return pkg is not None and subprocess.run([pkg, "--exists", "libzmq"]).returncode == 0


def _prepare() -> str | None:
    """None when librlx can be built (installing its packages as root), else why not."""
    if _zmq_headers() and shutil.which("make") and shutil.which("cc"):
        return None
    if os.geteuid() != 0:
        return "libzmq headers (or make, cc) missing and not root: run scripts/setup.sh as root"
    subprocess.run(["bash", str(C_DIR / "install-deps.sh")], check=True, timeout=900)
    return None


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _prepare()
    if reason is not None:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("librlx")
    build_c(folder, "all", "fuzz", "sanitize")
    return folder


def run(command: list[str], timeout: float = 120, **options) -> subprocess.CompletedProcess:
    env = {**os.environ, **SANITIZER_ENV}
    return subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **options,
    )


def clean(result: subprocess.CompletedProcess) -> None:
    """Exit status 0 and no sanitizer report."""
    out = result.stdout + result.stderr
    assert not SANITIZER_REPORT.search(out), out[-4000:]
    assert result.returncode == 0, out[-4000:]


# -- build -----------------------------------------------------------------------------------


def test_the_static_and_shared_libraries_build_warning_free_and_export_only_the_api(
    build: Path,
) -> None:
    for path in (
        "librlx.a",
        "librlx.so.1",
        "examples/cartpole",
        "tests/test_codec",
        "san/tests/test_client",
    ):
        assert (build / path).is_file(), path
    exported = subprocess.run(
        ["nm", "-D", "--defined-only", str(build / "librlx.so.1")], capture_output=True, text=True
    ).stdout.split()
    api = [name for name in exported if name.startswith("rlx_")]
    assert "rlx_update_block" in api and "rlx_connect_in" in api
    assert not [name for name in api if name.startswith(("rlx_encode", "rlx_decode"))], (
        "codec hidden"
    )
    lib = ctypes.CDLL(str(build / "librlx.so"))
    lib.rlx_strerror.restype = lib.rlx_last_error.restype = ctypes.c_char_p
    assert lib.rlx_strerror(21) == b"RLX_E_TIMEOUT"
    assert lib.rlx_last_error(None).startswith(b"no client handle")


def test_python_launchers_start_no_client_for_the_c_app() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "relaax_zmq.envs",
            "--config",
            str(ROOT / "conf" / "cartpole-c.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "environment.run" in result.stderr and "ExternalClients" in result.stderr


# -- codec and client ------------------------------------------------------------------------


def test_the_codec_reproduces_and_decodes_every_vector_and_refuses_malformed_frames(
    build: Path,
) -> None:
    vectors = load_vectors()
    valid = sum(v.message is not None for v in vectors)
    result = run([build / "tests" / "test_codec", VECTOR_FILE])
    clean(result)
    assert f"{valid} valid vectors encoded and decoded byte for byte" in result.stdout
    assert f"{len(vectors) - valid} invalid vectors refused naming their field" in result.stdout
    assert ", 0 failed" in result.stdout


def test_the_codec_test_fails_on_a_vector_it_does_not_reproduce(build: Path, tmp_path) -> None:
    text = VECTOR_FILE.read_text()
    # update_first_step's state: 0.5 becomes 0.75 in the meaning, not in the frames
    broken = text.replace("values=0.5,-0.25,0.125,2.0", "values=0.75,-0.25,0.125,2.0", 1)
    assert broken != text
    (tmp_path / "vectors.txt").write_text(broken)
    result = run([build / "tests" / "test_codec", tmp_path / "vectors.txt"])
    assert result.returncode == 1
    assert "update_first_step: frame 2 differs" in result.stderr


def test_the_client_follows_the_rules_against_a_fake_server(build: Path) -> None:
    result = run([build / "tests" / "test_client"])
    clean(result)
    assert re.search(r"test_client: \d+ checks, 0 failed", result.stdout), result.stdout


def test_the_sanitized_tests_run_clean(build: Path) -> None:
    clean(run([build / "san" / "tests" / "test_codec", VECTOR_FILE], timeout=300))
    clean(run([build / "san" / "tests" / "test_client"], timeout=300))


def test_a_short_fuzz_run_of_the_reply_decoder_breaks_nothing(build: Path) -> None:
    result = run([build / "fuzz" / "fuzz_decode", "--seconds", "3", "--seed", "7", VECTOR_FILE])
    clean(result)
    executions = int(re.search(r"(\d+) executions", result.stdout).group(1))
    assert executions > 10_000, result.stdout
    assert "no property broken" in result.stdout


# -- the CartPole example ----------------------------------------------------------------------


def test_the_c_cartpole_steps_like_gymnasiums(build: Path) -> None:
    env = gym.make("CartPole-v1")
    for seed, balance in ((0, False), (1, True)):  # a falling pole; one held up to the time limit
        obs, _ = env.reset(seed=seed)
        start = np.array(env.unwrapped.state, dtype=np.float64)
        rng = np.random.default_rng(seed)
        actions, expected = [], []
        while True:
            action = int(obs[2] + 0.5 * obs[3] > 0) if balance else int(rng.integers(2))
            actions.append(action)
            obs, reward, terminal, truncated, _ = env.step(action)
            expected.append([*obs, reward, terminal, truncated])
            if terminal or truncated:
                break
        stdin = " ".join(repr(float(x)) for x in start) + "\n" + " ".join(map(str, actions))
        result = run([build / "examples" / "cartpole", "--replay"], input=stdin)
        clean(result)
        got = np.array([[float(x) for x in line.split()] for line in result.stdout.splitlines()])
        want = np.array(expected, dtype=np.float64)
        assert got.shape == want.shape  # the same episode length: termination or truncation at 500
        assert np.allclose(got[:50, :4], want[:50, :4], atol=1e-6)  # before chaos amplifies ulps
        assert (got[:, 4:] == want[:, 4:]).all()  # rewards, terminal and truncated flags


@pytest.fixture
def c_app(tmp_path) -> Iterator[LocalStack]:
    stack = LocalStack(write_c_app(tmp_path), ready_timeout=120).start()
    try:
        yield stack
    finally:
        stack.stop()


def cartpole(binary: Path, stack: LocalStack, *args: str, timeout: float = 300) -> tuple[dict, str]:
    """Run the example against ``stack``; its JSON summary and its whole output."""
    result = run(
        [binary, "--endpoint", str(stack.config.broker.frontend), "--progress", "0", *args],
        timeout=timeout,
    )
    out = result.stdout + result.stderr
    assert not SANITIZER_REPORT.search(out), out[-4000:]
    assert result.returncode in (0, 2), f"{out[-3000:]}\n{stack.logs()}"
    return json.loads(result.stdout.strip().splitlines()[-1]), out


def test_the_c_cartpole_trains_through_a_real_system_under_sanitizers(
    build: Path, c_app: LocalStack
) -> None:
    for binary in (build / "san" / "examples" / "cartpole", build / "examples" / "cartpole"):
        summary, out = cartpole(binary, c_app, "--max-steps", "3000", "--sessions", "16")
        assert summary["steps"] >= 3000 and summary["updates"] >= 3000 // 16, out
        assert summary["episodes"] > 0 and summary["mean_return"] > 0, out  # rewards came back
        assert summary["restarts"] == 0, out
    deadline = time.monotonic() + 10
    while global_step(c_app.config) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert global_step(c_app.config) > 0, "the shards learned from the C client's steps"


def test_the_latency_bench_measures_both_clients_on_one_system(build: Path, tmp_path) -> None:
    with exchange(tmp_path) as endpoints:
        figures = c_session(build / "examples" / "latency", endpoints["frontend"], 300)
    assert figures["steps_per_s"] > 0
    assert 0 < figures["rtt_p50_us"] <= figures["rtt_p99_us"]


@pytest.mark.slow
def test_a_long_fuzz_run_of_the_reply_decoder_breaks_nothing(build: Path) -> None:
    command = [build / "fuzz" / "fuzz_decode", "--seconds", "60", "--seed", "11", VECTOR_FILE]
    result = run(command, timeout=300)
    clean(result)
    print(result.stdout.strip())
    if shutil.which("clang"):  # coverage-guided as well where libFuzzer is at hand
        make = ["make", "-s", "-C", C_DIR, f"BUILD={build}", "libfuzzer", "FUZZ_SECONDS=60"]
        result = run(make, timeout=600)
        clean(result)
        print(re.findall(r"Done \d+ runs in \d+ second", result.stderr))


@pytest.mark.slow
def test_the_c_cartpole_solves_cartpole_through_the_real_daemons(
    build: Path, c_app: LocalStack
) -> None:
    summary, out = cartpole(
        build / "examples" / "cartpole", c_app, "--time-limit", "600", timeout=700
    )
    print(
        f"C CartPole: solved={summary['solved']} in {summary['seconds']:.1f} s, {summary['steps']:,} steps"
    )
    assert summary["solved"], out[-3000:]  # mean return of the last 100 episodes >= 475
    assert summary["mean_return"] >= 475 and summary["steps"] < 1_000_000
