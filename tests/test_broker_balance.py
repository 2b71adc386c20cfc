"""The broker's pure parts: worker choice, admission, the block table, the worker
registry, the admin commands and the rate window (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relaax_zmq.broker import admin
from relaax_zmq.broker.balance import (
    MIB,
    Load,
    admission_refusal,
    eligible,
    least_loaded,
    should_move,
)
from relaax_zmq.broker.sessions import ID_LIMIT, SessionTable
from relaax_zmq.broker.stats import Counters, RateWindow
from relaax_zmq.broker.workers import WorkerRegistry

# ----------------------------------------------------------------- least_loaded


def test_least_loaded_lowest_ratio_wins() -> None:
    workers = [Load("a", 3, 4), Load("b", 1, 4), Load("c", 2, 4)]
    assert least_loaded(workers, 1) == "b"


def test_least_loaded_ratio_not_absolute_sessions() -> None:
    # 4/16 = 0.25 beats 1/2 = 0.5 although it hosts more sessions
    assert least_loaded([Load("small", 1, 2), Load("big", 4, 16)], 1) == "big"


def test_least_loaded_ties_by_in_flight_then_name() -> None:
    assert least_loaded([Load("a", 1, 4, in_flight=5), Load("b", 1, 4, in_flight=2)], 1) == "b"
    assert least_loaded([Load("b", 1, 4, in_flight=2), Load("a", 1, 4, in_flight=2)], 1) == "a"
    assert least_loaded([Load("w2", 0, 4), Load("w1", 0, 4), Load("w3", 0, 4)], 1) == "w1"


def test_least_loaded_needs_room_for_the_whole_block() -> None:
    workers = [Load("a", 0, 3), Load("b", 6, 10)]
    assert least_loaded(workers, 3) == "a"
    assert least_loaded(workers, 4) == "b"  # a cannot take 4, b has exactly 4 free
    assert least_loaded(workers, 5) is None


def test_least_loaded_skips_dead_draining_and_capacity_zero() -> None:
    workers = [
        Load("dead", 0, 8, alive=False),
        Load("draining", 0, 8, draining=True),
        Load("zero", 0, 0),
        Load("busy", 7, 8),
    ]
    assert least_loaded(workers, 1) == "busy"
    assert least_loaded(workers, 2) is None
    assert least_loaded([], 1) is None


def test_eligible_and_over_capacity_room() -> None:
    over = Load("x", 9, 8)  # capacity lowered below what it hosts
    assert over.room == 0
    assert not eligible(over, 1)
    assert Load("z", 0, 0).ratio == float("inf")


# ------------------------------------------------------------------ should_move


def test_should_move_to_strictly_less_loaded_worker() -> None:
    here = Load("a", 2, 4)
    assert should_move(here, 1, [here, Load("b", 0, 4)]) == "b"  # 1/4 < 2/4


def test_should_move_not_when_equal_after_move() -> None:
    here = Load("a", 2, 4)
    assert should_move(here, 2, [here, Load("b", 0, 4)]) is None  # 2/4 is not < 2/4


def test_should_move_off_draining_worker_to_any_eligible() -> None:
    here = Load("a", 1, 4, draining=True)
    assert should_move(here, 1, [here, Load("b", 3, 4)]) == "b"
    assert should_move(here, 2, [here, Load("b", 3, 4)]) is None  # no room anywhere


def test_should_move_never_to_itself() -> None:
    here = Load("a", 1, 100)
    assert should_move(here, 1, [here]) is None


# ---------------------------------------------------------------- admission


def test_admission_admits_with_memory_and_room() -> None:
    assert admission_refusal(1024 * MIB, 256, [Load("a", 0, 4)], 4) is None


def test_admission_refuses_low_memory_with_figures() -> None:
    text = admission_refusal(100 * MIB, 256, [Load("a", 0, 4)], 1)
    assert text is not None
    assert text.startswith("memory:")
    assert "100 MiB" in text and "256" in text and "min_free_memory_mib" in text


def test_admission_memory_checked_before_capacity() -> None:
    text = admission_refusal(0, 1, [], 1)
    assert text is not None and text.startswith("memory:")


def test_admission_refuses_without_room_with_figures() -> None:
    text = admission_refusal(10 * 1024 * MIB, 256, [Load("a", 3, 4), Load("b", 2, 4)], 3)
    assert text is not None
    assert text.startswith("capacity:")
    assert "3 sessions" in text and "2 live workers" in text and "at most 2 free" in text


def test_admission_refuses_without_live_workers() -> None:
    text = admission_refusal(10 * 1024 * MIB, 0, [Load("a", 0, 4, draining=True)], 1)
    assert text is not None and "no live worker" in text and "1 draining" in text
    assert "no live worker" in (admission_refusal(MIB, 0, [], 1) or "")


# -------------------------------------------------------------- block table


def test_new_ids_are_random_nonzero_62_bit() -> None:
    table = SessionTable()
    ids = {table.add(3, False, b"w", b"c", 0.0).id for _ in range(200)}
    assert len(ids) == 200
    assert all(0 < i < ID_LIMIT for i in ids)


def test_new_ids_never_overlap_existing_blocks() -> None:
    # forced draws: 0 (refused), 12 (inside 10..14), 8 (8..10 overlaps), 15 (free)
    draws = iter([10, 0, 12, 8, 15])
    table = SessionTable(randbits=lambda bits: next(draws))
    first = table.add(5, False, b"w", b"c", 0.0)
    assert (first.id, first.last) == (10, 14)
    second = table.add(3, False, b"w", b"c", 0.0)
    assert second.id == 15


def test_new_id_respects_upper_limit() -> None:
    draws = iter([ID_LIMIT - 1, 5])
    table = SessionTable(randbits=lambda bits: next(draws))
    assert table.add(2, False, b"w", b"c", 0.0).id == 5


def test_containing_finds_the_block_of_any_session() -> None:
    draws = iter([100, 200])
    table = SessionTable(randbits=lambda bits: next(draws))
    a = table.add(4, False, b"w", b"c", 0.0)
    b = table.add(1, True, b"w", b"c", 0.0)
    assert table.containing(100) is a and table.containing(103) is a
    assert table.containing(200) is b
    assert table.containing(99) is None and table.containing(104) is None
    assert table.containing(201) is None
    table.remove(a.id)
    assert table.containing(101) is None and table.get(100) is None
    assert table.remove(a.id) is None


def test_worker_index_attach_detach_and_loads() -> None:
    table = SessionTable()
    a = table.add(2, False, b"w1", b"c", 1.0)
    b = table.add(3, False, b"w1", b"c", 2.0)
    a.in_flight[1] = object()  # type: ignore[assignment]
    assert table.worker_load(b"w1") == (2, 5, 1)
    assert [x.id for x in table.on_worker(b"w1")] == [a.id, b.id]  # oldest first
    table.attach(b, b"w2", 5.0)
    assert b.placed == 5.0 and b.worker == b"w2"
    assert table.worker_load(b"w1") == (1, 2, 1)
    assert table.worker_load(b"w2") == (1, 3, 0)
    table.detach(a)
    assert table.worker_load(b"w1") == (0, 0, 0) and a.worker == b""
    assert len(table) == 2 and table.sessions() == 5 and table.in_flight() == 1


# ---------------------------------------------------------------- registry


def test_registry_caps_capacity_and_tracks_liveness() -> None:
    reg = WorkerRegistry(interval=0.5, liveness=3, max_sessions=10)
    body = {"worker": "w@a", "instance": "i1", "pid": 42, "capacity": 64, "link_version": 2}
    worker = reg.register(b"w", body, now=0.0)
    assert worker.capacity == 10 and worker.pid == 42
    assert reg.dead(1.5) == []
    assert [w.identity for w in reg.dead(1.6)] == [b"w"]
    reg.seen(b"w", 1.6)
    assert reg.dead(3.0) == []
    assert reg.seen(b"unknown", 1.0) is None
    assert reg.by_label("w@a") is worker and reg.by_label("w") is worker  # name, identity
    assert reg.by_label("nope") is None
    assert reg.holder("w@a", b"w") is None and reg.holder("w@a", b"other") is worker
    assert reg.remove(b"w") is worker and len(reg) == 0


def test_registry_without_cap_uses_announced_capacity() -> None:
    reg = WorkerRegistry(interval=1.0, liveness=1, max_sessions=None)
    body = {"worker": "x", "instance": "i", "pid": 1, "capacity": 7, "link_version": 2}
    assert reg.register(b"id", body, 0.0).capacity == 7


# ------------------------------------------------------------------- admin


class FakeTarget:
    def __init__(self) -> None:
        self.drained: list[str] = []
        self.dropped: list[int] = []

    def status(self) -> dict[str, Any]:
        return {"uptime_s": 1.0}

    def drain(self, worker: str) -> str | None:
        if worker != "w1":
            return f"unknown worker {worker!r}"
        self.drained.append(worker)
        return None

    def drop(self, session: int) -> str | None:
        if session != 7:
            return f"no block contains session {session}"
        self.dropped.append(session)
        return None


def ask(raw: bytes, target: Any = None) -> dict[str, Any]:
    return json.loads(admin.handle(raw, target or FakeTarget()))


def test_admin_status_drain_drop() -> None:
    target = FakeTarget()
    assert ask(b'{"command": "status"}', target) == {"ok": True, "status": {"uptime_s": 1.0}}
    assert ask(b'{"command": "drain", "worker": "w1"}', target) == {"ok": True}
    assert ask(b'{"command": "drop", "session": 7}', target) == {"ok": True}
    assert target.drained == ["w1"] and target.dropped == [7]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"not json", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"command": "explode"}', "unknown command"),
        (b"{}", "unknown command"),
        (b'{"command": "drain"}', "worker"),
        (b'{"command": "drain", "worker": "w9"}', "unknown worker"),
        (b'{"command": "drop", "session": "7"}', "session"),
        (b'{"command": "drop", "session": true}', "session"),
        (b'{"command": "drop", "session": -1}', "session"),
        (b'{"command": "drop", "session": 8}', "no block"),
        (b" " * (admin.MAX_REQUEST_BYTES + 1), "too large"),
    ],
)
def test_admin_refusals_are_answers(raw: bytes, words: str) -> None:
    reply = ask(raw)
    assert reply["ok"] is False
    assert words in reply["error"]


def test_admin_target_failure_is_answered() -> None:
    class Broken(FakeTarget):
        def status(self) -> dict[str, Any]:
            raise RuntimeError("boom")

    reply = ask(b'{"command": "status"}', Broken())
    assert reply["ok"] is False and "boom" in reply["error"]


# -------------------------------------------------------------- stats


def test_rate_window_counts_recent_events_only() -> None:
    rates = RateWindow(window=5.0)
    for t in range(10):  # 10 messages/s, 40 steps/s for 10 s
        for k in range(10):
            rates.add(100.0 + t + k / 10, messages=1, steps=4)
    got = rates.rates(110.0, started=0.0)
    assert got["messages_per_s"] == pytest.approx(10.0, rel=0.05)
    assert got["steps_per_s"] == pytest.approx(40.0, rel=0.05)
    assert rates.rates(200.0, started=0.0) == {"messages_per_s": 0.0, "steps_per_s": 0.0}


def test_rate_window_young_broker_divides_by_uptime() -> None:
    rates = RateWindow(window=5.0)
    rates.add(10.5, messages=5)
    assert rates.rates(11.0, started=10.0)["messages_per_s"] == pytest.approx(5.0)


def test_counters_by_error_name() -> None:
    counters = Counters()
    counters.error(5)
    counters.error(5)
    counters.error(999)
    assert counters.as_dict()["errors"] == {"UNKNOWN_SESSION": 2, "999": 1}
