"""Smoke run of ``python -m bench.api --quick``: both learn modes and SB3 measured, predict
timed against SB3's, one JSON line with the ratios."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # three learning runs to 475: about a minute


def test_a_quick_run_reports_learning_and_predict_ratios(import_bench, capsys) -> None:
    import_bench("api").main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    learning = figures["learning"]
    assert set(learning) == {"learn-serial", "learn-local", "sb3-ppo"}
    assert learning["sb3-ppo"]["vs_sb3"] == 1.0 and learning["sb3-ppo"]["call_seconds"] is None
    for case in ("learn-serial", "learn-local"):
        assert learning[case]["call_seconds"] >= (learning[case]["seconds"] or 0), figures
    assert figures["predict"]["batch256"]["ratio"] > 0 and figures["predict"]["one"]["sb3_us"] > 0
