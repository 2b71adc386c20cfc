"""Run one fuzz target in a child process (``engine``) and read libFuzzer's figures.

atheris can set up and fuzz once per process and ends it with ``exit``, so every run
is a child: ``fuzz`` seeds a corpus, starts the engine, echoes its output, and parses
the executions, the coverage and the crash files from it into a ``Report``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import TARGETS
from .engine import PLANT_ENV

#: The engine's module, run from the repository root (``ROOT`` goes on its PYTHONPATH).
ENGINE = "tests.fuzz.engine"
ROOT = Path(__file__).resolve().parents[2]
#: Seconds the child may take beyond its fuzzing time (start-up, imports, final stats).
GRACE = 120.0
#: Longest input libFuzzer makes.
MAX_LEN = 4096
#: Seconds one input may run before libFuzzer calls it a hang.
INPUT_TIMEOUT = 30

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")


@dataclass
class Report:
    """What one run did and found."""

    target: str
    exit_code: int = 0
    seconds: float = 0.0
    executions: int = 0
    execs_per_s: int = 0
    coverage: int = 0  # libFuzzer's "cov": instrumented edges reached
    features: int = 0  # libFuzzer's "ft": coverage features (edges and their hit counts)
    corpus: int = 0
    new_units: int = 0
    instrumented: int = 0  # modules atheris instrumented
    artifacts: list[str] = field(default_factory=list)
    finding: str = ""

    @property
    def ok(self) -> bool:
        """The run ended by its limits and found nothing."""
        return self.exit_code == 0 and not self.artifacts

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def fuzz(
    target: str,
    seconds: float,
    *,
    corpus: Path | None = None,
    artifacts: Path = Path("."),
    runs: int | None = None,
    seed: int | None = None,
    max_len: int = MAX_LEN,
    plant: bytes = b"",
    reproduce: Sequence[Path] = (),
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Fuzz ``target`` for ``seconds`` (or ``runs`` inputs); ``reproduce``: run those files only.

    New inputs go to ``corpus`` (a temporary folder when None), crash files to
    ``artifacts``; the target's seeds are read from a temporary folder.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        inputs = [str(p) for p in reproduce]
        if not inputs:
            seeds = _write_seeds(target, Path(tmp) / "seeds")
            work = corpus or Path(tmp) / "corpus"
            work.mkdir(parents=True, exist_ok=True)
            inputs = [str(work), str(seeds)]
        options = [
            f"-max_total_time={max(1, math.ceil(seconds))}",
            f"-max_len={max_len}",
            f"-timeout={INPUT_TIMEOUT}",
            f"-artifact_prefix={artifacts}{os.sep}",
            "-print_final_stats=1",
        ]
        options += [f"-runs={runs}"] if runs is not None else []
        options += [f"-seed={seed}"] if seed is not None else []
        command = [sys.executable, "-m", ENGINE, target, *options]
        path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
        env = {**os.environ, PLANT_ENV: plant.hex(), "PYTHONPATH": path}
        started = time.monotonic()
        code, lines = _run(command + inputs, env, seconds + GRACE, echo)
    report = parse_output(target, lines)
    report.exit_code = code
    report.seconds = round(time.monotonic() - started, 1)
    return report


def parse_output(target: str, lines: Sequence[str]) -> Report:
    """The figures of a libFuzzer run from its output lines."""
    report = Report(target)
    stats: dict[str, int] = {}
    finding: list[str] = []
    for line in lines:
        if line.startswith("INFO: Instrumenting "):
            report.instrumented += 1
        elif m := _STATUS.match(line):
            runs, report.coverage, report.features, report.corpus = map(int, m.groups())
            report.executions = max(report.executions, runs)
        elif m := _STAT.match(line):
            stats[m.group(1)] = int(m.group(2))
        elif m := _ARTIFACT.search(line):
            report.artifacts.append(m.group(1))
        elif m := _DONE.match(line):
            report.executions = max(report.executions, int(m.group(1)))
        if "Uncaught Python exception" in line or finding and not finding[-1].startswith("SUMMARY"):
            finding.append(line)  # the exception and its traceback, up to libFuzzer's summary
    report.executions = max(report.executions, stats.get("number_of_executed_units", 0))
    report.execs_per_s = stats.get("average_exec_per_sec", 0)
    report.new_units = stats.get("new_units_added", 0)
    report.finding = "\n".join(finding)
    return report


def _write_seeds(target: str, folder: Path) -> Path:
    module = importlib.import_module(f".{TARGETS[target]}", __package__)
    folder.mkdir(parents=True)
    for data in module.seeds():
        (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return folder


def _run(
    command: list[str], env: dict[str, str], timeout: float, echo: Callable[[str], None] | None
) -> tuple[int, list[str]]:
    """Run the engine, echoing and keeping its output; killed past ``timeout`` (code -9)."""
    lines: list[str] = []
    with subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as child:
        watchdog = threading.Timer(timeout, child.kill)
        watchdog.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                lines.append(line.rstrip("\n"))
                if echo is not None and not line.startswith("INFO: Instrumenting"):
                    echo(lines[-1])
        except BaseException:
            child.kill()
            raise
        finally:
            watchdog.cancel()
        code = child.wait()
    return code, lines
