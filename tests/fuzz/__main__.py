"""``python -m tests.fuzz TARGET --seconds N [--corpus DIR]``: fuzz one target.

Prints libFuzzer's progress, a summary, and last one line holding a JSON object of the
figures (``runner.Report``). Exit status 0 when the run found nothing, 1 when it did.
``--reproduce FILE...`` runs the target on those inputs (crash files) and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import TARGETS
from .runner import MAX_LEN, fuzz


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description="Coverage-guided fuzzing (atheris) of a relaax-zmq message handler.",
    )
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzzing time (default 60)")
    parser.add_argument("--runs", type=int, help="stop after this many inputs")
    parser.add_argument("--corpus", type=Path, help="keep new inputs here (and start from them)")
    parser.add_argument(
        "--artifacts", type=Path, default=Path("."), help="crash files go here (default .)"
    )
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed")
    parser.add_argument("--max-len", type=int, default=MAX_LEN, help="longest input (bytes)")
    parser.add_argument("--plant", default="", help="hex prefix that makes the target raise")
    parser.add_argument("--reproduce", type=Path, nargs="+", default=[], metavar="FILE")
    parser.add_argument("--quiet", action="store_true", help="no libFuzzer progress lines")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    echo = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    report = fuzz(
        args.target,
        args.seconds,
        corpus=args.corpus,
        artifacts=args.artifacts,
        runs=args.runs,
        seed=args.seed,
        max_len=args.max_len,
        plant=bytes.fromhex(args.plant),
        reproduce=args.reproduce,
        echo=echo,
    )
    verdict = "found nothing" if report.ok else f"FAILED (exit {report.exit_code})"
    print(
        f"{report.target}: {report.executions} executions in {report.seconds} s "
        f"({report.execs_per_s}/s), coverage {report.coverage} edges, {report.features} "
        f"features, corpus {report.corpus}: {verdict}"
    )
    for path in report.artifacts:
        print(f"  crash file: {path}")
    if report.finding:
        print(report.finding)
    print(json.dumps(report.as_dict()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
