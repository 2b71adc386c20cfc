"""What the fuzzers found (tests/test_fuzz.py), pinned as plain inputs: no atheris needed.

Each test feeds the real handler the message that broke it, as bytes (hex), and checks
the fixed behaviour: a refusal the peer's side expects, and a daemon that keeps serving.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zmq
from test_ps_shards import ps_config

from relaax_zmq.algorithms.common.schedules import exponential
from relaax_zmq.broker import admin
from relaax_zmq.broker.broker import Broker
from relaax_zmq.config import parse_config
from relaax_zmq.core import OptimizerSpec, ParameterServerSpec
from relaax_zmq.errors import ProtocolError
from relaax_zmq.metrics.wire import BatchError, decode_batch
from relaax_zmq.protocol import encode, link, messages
from relaax_zmq.ps import wire
from relaax_zmq.ps.shard import Shard
from relaax_zmq.testing import LINEAR_POLICY_PATH

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

NOW = 1000.0
N = 10  # parameters: shard 0 holds 0..4, shard 1 holds 5..9
INITIAL = np.linspace(-1.0, 1.0, N).astype(np.float32)
#: GRADIENT for shard 1 from worker "a": base 0, steps 0, episodes 0, offset 5, count 5
GRADIENT_1E30 = (
    "525850530201010000000000000000000000000000000000000000000000000005000000000000000500000000000000010061",
    "caf24971caf24971caf249710000000000000000",  # 1e30, 1e30, 1e30, 0, 0 (their sum is finite)
)
#: GRADIENT for shard 0 from worker "b": steps 1, episodes 2**63, zeros
GRADIENT_EPISODES_2_63 = (
    "525850530201000000000000000000000100000000000000000000000000008000000000000000000500000000000000010062",
    "0000000000000000000000000000000000000000",
)
#: HELLO for shard 0 from worker "c": known_version 2**64 - 1
HELLO_LAST_VERSION = ("5258505302020000ffffffffffffffff010063",)
#: STATISTICS for shard 0 from worker "a": three deltas of 1e308
STATISTICS_1E308 = (
    "52585053020400000300000000000000010061",
    "a0c8eb85f3cce17fa0c8eb85f3cce17fa0c8eb85f3cce17f",
)


def shard(index: int = 0, optimizer: str = "adam", *, schedule=None, **ps) -> Shard:
    hyper = {"lr": 0.1, "momentum": 0.9} if optimizer == "sgd" else {"lr": 0.01}
    spec = ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec(optimizer, hyper, lr_schedule=schedule),
        statistics_size=3,
    )
    return Shard(ps_config(2, workers=2, **ps), index, spec=spec)


def deliver(target: Shard, frames: tuple[str, ...]) -> ProtocolError | None:
    """Hand hex ``frames`` to the shard as its PULL loop does; the refusal, if any."""
    received = [zmq.Frame(bytes.fromhex(f)) for f in frames]
    try:
        target.handle(wire.decode_to_shard(received, target.shard), NOW)
    except ProtocolError as exc:
        return exc
    return None


def publishable(target: Shard) -> None:
    """What the shard publishes next still fits the wire (its loop would die otherwise)."""
    s, u = target, target.updater
    wire.encode(wire.ShardHeartbeat(s.shard, 1, u.version, s.global_step, s.episodes, False))
    offset, total = s.slice.offset, s.spec.param_count
    weights = wire.Weights(
        s.shard, 1, u.version, s.global_step, s.episodes, offset, total, u.params
    )
    wire.encode(weights)
    assert np.isfinite(u.params).all() and np.isfinite(s.statistics).all()
    assert all(np.isfinite(a).all() for a in u.optimizer.arrays.values())


def good_gradient(target: Shard, steps: int = 1) -> tuple[str, ...]:
    values = np.full(target.slice.count, 0.5, np.float32)
    message = wire.Gradient(
        target.shard, "a", target.updater.version, steps, 0, target.slice.offset, values
    )
    return tuple(bytes(memoryview(f)).hex() for f in wire.encode(message))


# -- parameter-server shard ---------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_a_gradient_too_large_to_square_is_dropped_and_poisons_nothing(optimizer: str) -> None:
    # found: adam's and rmsprop's squares became inf (the slice froze for good); sgd's
    # momentum then the weights went to -inf two gradients later
    target = shard(1, optimizer)
    before = target.updater.params.copy()
    for _ in range(3):
        assert deliver(target, GRADIENT_1E30) is None
    assert target.counters.dropped_nonfinite == 3 and target.updater.version == 0
    np.testing.assert_array_equal(target.updater.params, before)
    publishable(target)
    assert deliver(target, good_gradient(target)) is None and target.updater.version == 1


def test_delay_compensation_drops_a_correction_that_overflows() -> None:
    target = shard(0, "sgd", update="async", combine="delay_compensation")
    big = np.full(5, 1e18, np.float32)  # finite squares, but a large step between versions
    for base in (0, 0):  # the second is one version stale: corrected by g * g * (w - w_base)
        frames = wire.encode(wire.Gradient(0, "a", base, 1, 0, 0, big))
        deliver(target, tuple(bytes(memoryview(f)).hex() for f in frames))
    assert target.updater.version == 1 and target.counters.dropped_nonfinite == 1
    publishable(target)


def test_step_counts_past_what_the_wire_carries_are_refused() -> None:
    # found: episodes summed to 2**64, then publishing the heartbeat raised and killed the loop
    target = shard(0)
    for _ in range(2):
        error = deliver(target, GRADIENT_EPISODES_2_63)
        assert error is not None and error.field == "ps.gradient.steps"
    assert (target.global_step, target.episodes, target.updater.version) == (0, 0, 0)
    publishable(target)
    assert deliver(target, good_gradient(target, steps=7)) is None and target.global_step == 7


def test_a_hello_with_the_last_version_is_refused() -> None:
    # found: the shard adopted 2**64 - 1, its next version did not fit the WEIGHTS header
    target = shard(0)
    error = deliver(target, HELLO_LAST_VERSION)
    assert error is not None and error.field == "ps.hello.known_version"
    assert deliver(target, good_gradient(target)) is None and target.updater.version == 1
    publishable(target)


def test_statistics_deltas_whose_totals_overflow_are_dropped() -> None:
    # found: two deltas of 1e308 made the shared statistics inf for every worker
    target = shard(0)
    assert deliver(target, STATISTICS_1E308) is None
    assert deliver(target, STATISTICS_1E308) is None
    assert target.statistics_updates == 1 and target.counters.dropped_nonfinite == 1
    np.testing.assert_array_equal(target.statistics, [1e308] * 3)
    publishable(target)


def test_a_growing_exponential_schedule_reaches_its_final_value_without_overflow() -> None:
    # found: 2.0 ** (step / 10) raised OverflowError past step 10240, on every gradient
    schedule = exponential(0.01, 2.0, 10, final=1.0)
    assert schedule(10**6) == 1.0 and schedule(1 << 53) == 1.0
    target = shard(0, schedule=schedule)
    assert deliver(target, good_gradient(target, steps=20_000)) is None
    assert target.updater.optimizer.lr == 1.0 and target.updater.version == 1


# -- JSON from peers: link control bodies, admin requests, metrics headers ------------------------

NESTED = b"[" * 1500 + b"{}" + b"]" * 1500  # json.loads raises RecursionError, not ValueError


def test_a_deeply_nested_link_body_is_a_protocol_error_the_broker_counts() -> None:
    with pytest.raises(ProtocolError) as info:
        link.parse_control(link.Command.HEARTBEAT, NESTED)
    assert info.value.field == "link.body"
    config = parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit"},
            "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
        }
    )
    broker = Broker(config)  # no sockets: what it sends is dropped and counted
    broker.link.on_message([zmq.Frame(b"w0"), zmq.Frame(b"REG"), zmq.Frame(NESTED)])
    assert broker.counters.bad_link == 1 and len(broker.workers) == 0


def test_a_deeply_nested_admin_request_is_answered_as_bad_json() -> None:
    reply = json.loads(admin.handle(NESTED, None))  # type: ignore[arg-type]
    assert reply["ok"] is False and reply["error"].startswith("expected a UTF-8 JSON object")


@pytest.mark.parametrize(
    "header",
    [
        NESTED,
        # found: math.isfinite(an int above float's range) raised OverflowError out of decode_batch
        b'{"version": 1, "source": "worker-0", "step": 0, "time": 1' + b"0" * 400 + b"}",
    ],
    ids=["nested", "huge-int-time"],
)
def test_a_metrics_header_the_decoder_chokes_on_is_a_batch_error(header: bytes) -> None:
    rlx = [bytes(memoryview(f)) for f in encode(messages.metrics(0, {"a": 1.0}))]
    with pytest.raises(BatchError) as info:
        decode_batch([header, *rlx])
    assert info.value.reason == "header"
