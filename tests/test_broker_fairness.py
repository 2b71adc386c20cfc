"""Per-peer budgets on the broker's frontend (broker/fairness.py, broker/cutoff.py).

The pure core without sockets: a token bucket per connection, charged for each refused
message; a connection whose budget is spent is answered BUSY and closed. Then one real
broker over tcp loopback: a client flooding frames at the size limit is cut off (again
after each reconnect) while another session keeps stepping, and legal traffic, however
fast, is never charged.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq
from exchange_support import running_exchange, status

from broker.cutoff import HOLD, Cutoff, shut_reading
from broker.fairness import PeerBudget, TokenBucket, budget_text, refusal_cost
from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config, parse_config
from relaax_zmq.errors import ConfigError
from relaax_zmq.protocol import ErrorCode, MessageType, decode, encode, messages
from relaax_zmq.runtime.sockets import socket_map

# ------------------------------------------------------------------------- the pure core


def test_a_bucket_spends_its_burst_then_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket.full(rate=10.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)  # half a token back
    assert bucket.take(0.1) and not bucket.take(0.1)  # one whole token
    assert bucket.refill(100.0) == 3.0  # never above the burst
    assert bucket.refill(50.0) == 3.0  # time running backwards adds nothing
    assert bucket.take(100.0, cost=3.0) and not bucket.take(100.0, cost=0.5)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 4.0), (-1.0, 4.0), (1.0, 0.5)])
def test_a_bucket_refuses_a_rate_or_burst_that_admits_nothing(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="expected rate > 0 and burst >= 1"):
        TokenBucket.full(rate, burst, 0.0)
    with pytest.raises(ValueError):
        PeerBudget(rate, burst)


def test_peers_have_budgets_of_their_own_and_a_refused_charge_costs_nothing() -> None:
    budget = PeerBudget(rate=1.0, burst=2.0)
    assert budget.charge(b"a", 0.0) and budget.charge(b"a", 0.0)
    assert not budget.charge(b"a", 0.0)
    assert budget.tokens(b"a", 0.0) == 0.0  # the refused charge took nothing
    assert budget.charge(b"b", 0.0)  # another peer is not touched
    assert budget.tokens(b"unknown", 0.0) == 2.0
    assert budget.charge(b"a", 1.0)  # a second later: one back
    budget.forget(b"a")
    assert budget.tokens(b"a", 1.0) == 2.0


def test_peer_budgets_stay_bounded() -> None:
    budget = PeerBudget(rate=1.0, burst=2.0, max_peers=3)
    for i in range(10):
        budget.charge(bytes([i]), 0.0)
    assert len(budget) == 3  # the oldest forgotten first
    assert budget.sweep(0.5) == 0  # half a token back each: still owing
    assert budget.sweep(1.0) == 3 and len(budget) == 0  # refilled: nothing to remember


def test_the_busy_text_names_the_budget_and_a_refusal_costs_by_its_size() -> None:
    text = budget_text(20.0, 16)
    assert "more than 16 at once" in text and "20 a second" in text and "closed" in text
    assert "32 KiB" in text
    assert refusal_cost(0) == 1.0 and refusal_cost(128 << 10) == 5.0


def test_a_cut_peer_is_ignored_for_the_hold_then_forgotten() -> None:
    cutoff = Cutoff()
    assert not cutoff
    cutoff.cut(b"peer", -1, now=10.0)  # no descriptor (inproc): only ignored
    assert b"peer" in cutoff and b"other" not in cutoff
    cutoff.tick(10.0 + HOLD / 2)
    assert b"peer" in cutoff
    cutoff.tick(10.0 + HOLD)
    assert b"peer" not in cutoff and not cutoff
    assert not shut_reading(-1)


def test_the_budget_is_configured_in_the_broker_section_and_validated() -> None:
    base = {"version": 1, "environment": {"run": "bandit"}, "algorithm": {"name": "da3c"}}
    config = parse_config({**base, "broker": {"peer_refusal_rate": 5, "peer_refusal_burst": 2}})
    assert (config.broker.peer_refusal_rate, config.broker.peer_refusal_burst) == (5.0, 2)
    for key, value in (("peer_refusal_rate", 0), ("peer_refusal_burst", 0)):
        with pytest.raises(ConfigError, match=rf"^broker\.{key}: expected"):
            parse_config({**base, "broker": {key: value}})


# ------------------------------------------------------------------- a real broker


def _flood(frontend: str, frame: int, seconds: float, answers: dict[str, int]) -> None:
    """Frames of ``frame`` bytes as fast as the socket takes them; answers counted by code."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 16)
    sock.connect(frontend)
    header = encode(messages.init())[0]
    payload = b"\0" * frame
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                sock.send_multipart([header, payload], zmq.NOBLOCK)
                answers["sent"] += 1
            except zmq.Again:
                time.sleep(0.001)
            while sock.poll(0):
                code = messages.read_error(decode(sock.recv_multipart()))[0]
                name = ErrorCode(code).name
                answers[name] = answers.get(name, 0) + 1
    finally:
        sock.close()
        ctx.term()


def test_a_client_flooding_at_the_limit_is_cut_off_and_another_keeps_stepping(tmp_path) -> None:
    broker = {"max_message_bytes": 65536}  # the default budget: 16, a refusal here costs 5
    with running_exchange(tmp_path, worker_count=1, broker=broker) as ex:
        limit = socket_map(load_config(ex.config))["broker.frontend"].frame_limit
        good = AgentProxy(ex.frontend)
        good.init()
        answers = {"sent": 0}
        flood = threading.Thread(target=_flood, args=(ex.frontend, limit, 2.0, answers))
        flood.start()
        steps = 0
        try:
            while flood.is_alive():
                assert int(good.update(state=np.zeros(4, np.float32))) in (0, 1)
                steps += 1
        finally:
            flood.join()
            good.disconnect()
        counters = status(ex.admin)["counters"]
        assert ex.broker.proc.poll() is None
    # each connection: 3 refusals, a fourth (answered, then BUSY) closes it; it reconnected
    # and was cut again
    assert counters["cut_peers"] >= 2, counters
    assert answers.get("BUSY", 0) >= 2 and answers.get("TOO_LARGE", 0) >= 4, answers
    assert answers["TOO_LARGE"] <= 4 * (counters["cut_peers"] + 1), (answers, counters)
    assert steps >= 100, steps  # the other session stepped all along


def test_legal_traffic_is_never_charged_however_fast(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"peer_refusal_burst": 1}) as ex:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(ex.frontend)
        try:
            heartbeat = encode(messages.simple(MessageType.HEARTBEAT, 0, 0))
            for _ in range(2000):
                sock.send_multipart(heartbeat)
            replies = []
            while len(replies) < 2000 and sock.poll(5000):
                replies.append(decode(sock.recv_multipart()).type)
        finally:
            sock.close()
            ctx.term()
        assert replies == [MessageType.HEARTBEAT] * 2000
        assert status(ex.admin)["counters"]["cut_peers"] == 0
