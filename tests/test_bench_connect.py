"""Smoke run of ``python -m bench.connect`` on a small burst: both routers measured, the
figures printed as one JSON line, none of the exchange socket's connections dropped."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bench_connect(import_bench) -> ModuleType:
    return import_bench("connect")


def test_a_small_burst_reports_both_routers_as_one_json_line(bench_connect, capsys) -> None:
    bench_connect.main(["--clients", "200", "--rounds", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    for router in ("zmq_default", "open_socket"):
        assert 0 < figures[router]["median_s"] <= figures[router]["worst_s"], figures
    assert figures["open_socket"]["overflows_per_round"] == 0, figures
    assert figures["ratio"]["median"] > 0
    assert any("open_socket / zmq_default" in line for line in lines)


def test_listen_overflows_reads_the_kernels_counter(bench_connect) -> None:
    count = bench_connect.listen_overflows()
    assert isinstance(count, int) and count >= 0
