"""The C client's step round trip against the Python AgentProxy's, through the same system.

Run: ``python -m bench.c_client [--steps N] [--quick]``. Builds librlx's examples
(``make -C envs/c``), starts a real broker and one real worker running a tiny linear
policy (``bench.exchange.exchange``: the cheapest agent, so that the clients' own cost shows),
then measures, in the same run and against the same processes, one session each of:

- ``python``: ``AgentProxy`` (bench.exchange's ``single_session``);
- ``c``: librlx (``envs/c/examples/latency.c``), the same steps.

For each: the round-trip time of ``update`` alone (p50, p99, after 200 warm-up steps) and
environment steps per second with CartPole-v1 stepped between updates (gymnasium's for Python,
``envs/c/examples/cartpole_env.c`` for C). The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from bench.exchange import exchange, percentiles, single_session
from bench.learning import write_case_app
from bench.timing import print_figures_line, table

ROOT = Path(__file__).resolve().parent.parent
C_DIR = ROOT / "envs" / "c"
#: The marker runner of conf/cartpole-c.yaml, as an absolute spec (apps are written elsewhere).
EXTERNAL_RUNNER = f"{C_DIR / 'external.py'}:ExternalClients"


def build_c(build_dir: Path | None = None, *targets: str) -> Path:
    """``make -C envs/c [BUILD=build_dir] targets``; the build folder."""
    if shutil.which("make") is None:
        raise RuntimeError(
            "make is not installed (scripts/setup.sh installs the C toolchain's parts)"
        )
    command = ["make", "-s", f"-j{min(4, os.cpu_count() or 1)}", "-C", str(C_DIR)]
    if build_dir is not None:
        command.append(f"BUILD={build_dir}")
    result = subprocess.run(
        [*command, *(targets or ("examples",))], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"building librlx failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return build_dir if build_dir is not None else C_DIR / "build"


def write_c_app(folder: Path, seed: int = 1) -> Path:
    """conf/cartpole-c.yaml with free ports and its own folders in ``folder`` (bench.learning's)."""
    path = write_case_app("cartpole-c", seed, folder)
    app = yaml.safe_load(path.read_text())
    app["environment"]["run"] = EXTERNAL_RUNNER
    path.write_text(yaml.safe_dump(app))
    return path


def c_session(binary: Path, frontend: str, steps: int) -> dict[str, float]:
    """librlx's figures from one run of ``latency`` against ``frontend``."""
    result = subprocess.run(
        [str(binary), "--endpoint", frontend, "--steps", str(steps)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the C latency client failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rtts = [us / 1e6 for us in figures["rtts_us"]]
    return {"steps_per_s": figures["steps_per_s"], **percentiles(rtts)}


def run(steps: int) -> dict[str, dict[str, float]]:
    """Both clients against one broker and worker; figures and ratios."""
    binary = build_c() / "examples" / "latency"
    with tempfile.TemporaryDirectory() as tmp, exchange(Path(tmp)) as endpoints:
        python = single_session(endpoints["frontend"], steps)
        python.pop("rtts")
        c = c_session(binary, endpoints["frontend"], steps)
    return {
        "python": python,
        "c": c,
        "ratios": {
            "c_rtt_p50_over_python": c["rtt_p50_us"] / python["rtt_p50_us"],
            "c_rtt_p99_over_python": c["rtt_p99_us"] / python["rtt_p99_us"],
            "c_steps_per_s_over_python": c["steps_per_s"] / python["steps_per_s"],
        },
    }


def report(figures: dict[str, dict[str, float]], steps: int) -> None:
    rows = [["client", "steps/s (CartPole)", "rtt p50 us", "rtt p99 us"]]
    for name, label in (("python", "Python AgentProxy"), ("c", "C librlx")):
        f = figures[name]
        rows.append(
            [label, f"{f['steps_per_s']:,.0f}", f"{f['rtt_p50_us']:.0f}", f"{f['rtt_p99_us']:.0f}"]
        )
    print(f"One session through a real broker and worker (tcp loopback), {steps:,} steps each")
    print(table(rows))
    r = figures["ratios"]
    print(
        f"\nC / Python: p50 round trip {r['c_rtt_p50_over_python']:.2f}x, "
        f"p99 {r['c_rtt_p99_over_python']:.2f}x, steps/s {r['c_steps_per_s_over_python']:.2f}x"
    )
    print_figures_line(figures, digits=3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.c_client")
    parser.add_argument("--steps", type=int, default=10000, help="timed steps per client")
    parser.add_argument("--quick", action="store_true", help="2000 steps (a smoke run)")
    args = parser.parse_args(argv)
    steps = 2000 if args.quick else args.steps
    report(run(steps), steps)


if __name__ == "__main__":
    main()
