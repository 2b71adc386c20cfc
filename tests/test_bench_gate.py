"""Smoke run of ``python -m bench.gate``: both figures measured, one JSON line."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(60)


def test_the_gate_bench_prints_its_figures_as_one_json_line(import_bench, capsys) -> None:
    import_bench("gate").main()
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])["gate"]
    assert figures["gate_us"] > 0 and figures["peek_us"] > 0, figures
    assert figures["ratio"] == pytest.approx(figures["gate_us"] / figures["peek_us"], rel=0.01)
    assert any(line.startswith("gate / peek:") for line in lines)
