"""Smoke run of ``python -m bench.ps --quick``: every phase runs and gives positive figures."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bench_ps(import_bench) -> ModuleType:
    return import_bench("ps")


def test_quick_run_reports_every_figure_as_one_json_line(bench_ps, capsys) -> None:
    bench_ps.main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    for key in (
        "ingest_mb_per_s",
        "raw_push_pull_mb_per_s",
        "raw_single_frame_mb_per_s",
        "ingest_ratio",
        "shards_1",
        "shards_2",
        "broadcast_ms_1e6",
        "broadcast_ms_1e7",
    ):
        assert figures[key] > 0, key
    assert figures["dropped_full"] == 0
    assert figures["quick"] is True
    assert any("target >= 0.7x" in line for line in lines)
