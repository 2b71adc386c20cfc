"""Smoke run of ``python -m bench.exchange --quick``: every case measured, the serial bound
beside the 64-session case, both ratios in the one JSON line."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.timeout(90)  # about 20 s on the 2-core machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_quick_run_reports_the_serial_bound_and_both_ratios(
    import_bench, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(ROOT)  # its processes run ``python -m bench.exchange``
    import_bench("exchange").main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["serial_bound"]["steps_per_s"] > 0, figures
    ratios = figures["ratios"]
    assert ratios["sessions_64_over_serial_bound"] > 0, figures
    assert ratios["sessions_1_rtt_p50_over_raw"] > 0, figures
    assert any("serial bound" in line and "target >= 0.7" in line for line in lines)
    assert any("target <= 1.5x" in line for line in lines)
