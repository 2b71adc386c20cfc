"""Shards as threads, clients in the test: every update rule against a numpy reference.

Real sockets over tcp loopback. The helpers here (free port ranges, configs,
running shards) are also used by the process tests (tests/test_ps_processes.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import pytest
import zmq

from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.core import OptimizerSpec, ParameterServerSpec
from relaax_zmq.kernels import reference
from relaax_zmq.ps import ParameterClient, Shard, ShardState, wire
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.ports import free_port_range
from relaax_zmq.testing import LINEAR_PG_PATH

pytestmark = pytest.mark.timeout(60)

N = 10  # parameters
INITIAL = np.linspace(-1.0, 1.0, N).astype(np.float32)
LR = 0.1


def ps_section(shards: int, **values: Any) -> dict[str, Any]:
    """A ``parameter_servers`` section on free ports, with quick heartbeats."""
    section: dict[str, Any] = {
        "shards": shards,
        "endpoints": {
            "gradients_port": free_port_range(shards),
            "weights_port": free_port_range(shards),
        },
        "heartbeat_interval": 0.1,
        "heartbeat_liveness": 3,
    }
    return {**section, **values}


def ps_config(
    shards: int = 1, *, workers: int = 1, algorithm: dict | None = None, **values: Any
) -> AppConfig:
    """An app running ``linear_pg`` (``algorithm``: its config) with ``shards`` shards."""
    return parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit"},
            "algorithm": {"path": str(LINEAR_PG_PATH), "config": algorithm or {}},
            "workers": {"count": workers},
            "parameter_servers": ps_section(shards, **values),
        }
    )


def sgd_spec(**hyper: float) -> ParameterServerSpec:
    return ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("sgd", {"lr": LR, **hyper}),
    )


@contextmanager
def running_shards(
    config: AppConfig, spec: ParameterServerSpec | None = None, hooks: list | None = None
) -> Iterator[list[Shard]]:
    """Every shard of ``config`` serving in a thread; stopped (and joined) afterwards."""
    stop = StopFlag()
    count = config.parameter_servers.shards
    hooks = hooks or [None] * count
    shards = [Shard(config, i, spec=spec, checkpoints=hooks[i]) for i in range(count)]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in shards]
    for thread in threads:
        thread.start()
    try:
        yield shards
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive(), "a shard did not stop"


@contextmanager
def clients(
    config: AppConfig, *names: str, count: int = N, mixed: bool = False, statistics_size: int = 0
) -> Iterator[list[ParameterClient]]:
    """A ``ParameterClient`` per name (``mixed``: the spec allows mixed versions)."""
    with ExitStack() as stack:
        found = []
        for name in names:
            client = ParameterClient(
                config,
                count,
                name,
                allow_mixed_versions=mixed,
                statistics_size=statistics_size,
            )
            stack.callback(client.close)
            found.append(client)
        yield found


def wait_for(predicate, timeout: float = 5.0, what: str = "a condition", poll=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for client in poll:
            client.poll()
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def pump(polled: list[ParameterClient], seconds: float) -> None:
    """Poll the clients for ``seconds``, as a worker's loop does (heartbeats go out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for client in polled:
            client.poll()
        time.sleep(0.01)


def wait_version(
    client: ParameterClient, version: int, timeout: float = 5.0, also: tuple = ()
) -> np.ndarray:
    """The client's vector once every shard published ``version`` (``also``: poll these too)."""
    wait_for(
        lambda: client.consistent and client.weights()[1][0] == version,
        timeout,
        f"version {version}",
        poll=[client, *also],
    )
    return client.weights()[0].copy()


def grads(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(N).astype(np.float32) for _ in range(count)]


# -- async: fifo ----------------------------------------------------------------------------------


def test_fifo_applies_every_gradient_in_arrival_order_with_adam() -> None:
    config = ps_config(2)
    spec = ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("adam", {"lr": 0.01, "beta1": 0.8}),
    )
    gs = grads(5)
    with running_shards(config, spec) as shards, clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g in gs:
            assert client.push(g, [0, 0], steps=3, episodes=1) == 2  # all on version 0
        got = wait_version(client, 5)
        stats = shards[0].stats()
    w = INITIAL.copy()
    m, v = np.zeros(N, np.float32), np.zeros(N, np.float32)
    for t, g in enumerate(gs, 1):
        reference.adam_step(w, g, m, v, t, 0.01, beta1=0.8)
    np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-7)
    # staleness of each gradient: the version it arrived at minus 0
    assert stats["staleness_mean"] == pytest.approx(2.0) and stats["staleness_max"] == 4
    assert (stats["global_step"], stats["episodes"], stats["applied"]) == (15, 5, 5)
    assert stats["worker_gradients"] == {"w0": 5}


def test_max_staleness_drops_old_gradients_and_counts_them() -> None:
    config = ps_config(1, max_staleness=1)
    gs = grads(3)
    with running_shards(config, sgd_spec()) as (shard,), clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g in gs:
            client.push(g, [0], steps=1, episodes=0)  # staleness 0, 1, then 2: dropped
        got = wait_version(client, 2)
        wait_for(lambda: shard.stats()["dropped_stale"] == 1, what="the drop")
        stats = shard.stats()
    np.testing.assert_allclose(got, INITIAL - LR * gs[0] - LR * gs[1], rtol=1e-6)
    assert stats["staleness_max"] == 1 and stats["staleness_mean"] == pytest.approx(0.5)
    assert stats["global_step"] == 3  # dropped gradients still count their steps


# -- async: average -------------------------------------------------------------------------------


def test_average_applies_the_mean_of_each_full_window() -> None:
    config = ps_config(2, combine="average", average_window=3)
    gs = grads(7, seed=1)
    with running_shards(config, sgd_spec()) as shards, clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g in gs:
            client.push(g, [0, 0], steps=1, episodes=0)
        got = wait_version(client, 2)
        wait_for(lambda: shards[1].stats()["gradients"] == 7, what="the 7th gradient")
        pending = [s.stats()["pending"] for s in shards]
    expected = INITIAL - LR * np.mean(gs[0:3], axis=0) - LR * np.mean(gs[3:6], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert pending == [1, 1]  # the 7th waits for its window


# -- async: delay compensation --------------------------------------------------------------------


def test_delay_compensation_corrects_stale_gradients_with_the_base_weights() -> None:
    lam = 0.5
    config = ps_config(2, combine="delay_compensation", delay_compensation_lambda=lam)
    gs = grads(3, seed=2)
    bases = [0, 0, 1]
    with running_shards(config, sgd_spec()) as _, clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g, base in zip(gs, bases, strict=True):
            client.push(g, [base, base], steps=1, episodes=0)
        got = wait_version(client, 3)
    history = [INITIAL.copy()]
    w = INITIAL.copy()
    for g, base in zip(gs, bases, strict=True):
        corrected = g + np.float32(lam) * g * g * (w - history[base])
        w = w - np.float32(LR) * corrected
        history.append(w.copy())
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    # without compensation the result differs: the test can tell the rules apart
    plain = INITIAL - LR * np.sum(gs, axis=0)
    assert not np.allclose(got, plain, rtol=1e-5, atol=1e-6)


def test_delay_compensation_drops_a_gradient_whose_base_weights_are_gone() -> None:
    config = ps_config(1, combine="delay_compensation", max_staleness=1)
    with running_shards(config, sgd_spec()) as (shard,), clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g in grads(2):
            client.push(g, [0], steps=1, episodes=0)
        wait_version(client, 2)
        client.push(grads(1)[0], [0], steps=1, episodes=0)  # 2 versions old: dropped
        wait_for(lambda: shard.stats()["dropped_stale"] == 1, what="the drop")
        assert shard.stats()["version"] == 2


# -- sync ---------------------------------------------------------------------------------------


def test_sync_round_waits_for_every_worker_then_applies_the_mean() -> None:
    config = ps_config(2, workers=2, update="sync")
    ga, gb, gc = grads(3, seed=3)
    with running_shards(config, sgd_spec()) as shards, clients(config, "a", "b") as (a, b):
        assert a.wait_consistent(5) and b.wait_consistent(5)
        wait_for(lambda: shards[0].stats()["workers_live"] == 2, what="both workers", poll=[a, b])
        a.push(ga, [0, 0], steps=1, episodes=0)
        wait_for(lambda: shards[1].stats()["pending"] == 1, what="a's gradient", poll=[a, b])
        pump([a, b], 0.4)  # b's heartbeats keep it alive: the round must not close without it
        assert shards[0].stats()["version"] == 0 and shards[1].stats()["version"] == 0
        b.push(gb, [0, 0], steps=1, episodes=0)
        after_round = wait_version(a, 1, also=(b,))  # b stays alive throughout
        a.push(gc, [0, 0], steps=1, episodes=0)  # an old round's gradient
        a.push(gc, [1, 1], steps=1, episodes=0)
        a.push(gc, [1, 1], steps=1, episodes=0)  # a second one from a in this round
        wait_for(
            lambda: shards[0].stats()["dropped_duplicate"] == 1, what="the duplicate", poll=[a, b]
        )
        stats = shards[0].stats()
    np.testing.assert_allclose(after_round, INITIAL - LR * (ga + gb) / 2, rtol=1e-6)
    assert stats["dropped_stale"] == 1 and stats["version"] == 1 and stats["pending"] == 1


def test_sync_round_closes_without_a_worker_that_went_silent() -> None:
    config = ps_config(1, workers=2, update="sync")
    (g,) = grads(1, seed=4)
    with running_shards(config, sgd_spec()) as (shard,), clients(config, "a", "b") as (a, b):
        assert a.wait_consistent(5) and b.wait_consistent(5)
        wait_for(lambda: shard.stats()["workers_live"] == 2, what="both workers", poll=[a, b])
        b.close()  # b stops heartbeating
        a.push(g, [0], steps=1, episodes=0)
        got = wait_version(a, 1, timeout=5)
    np.testing.assert_allclose(got, INITIAL - LR * g, rtol=1e-6)


# -- two shards, two workers ----------------------------------------------------------------------


def test_two_clients_pushing_through_two_shards_see_the_same_consistent_weights() -> None:
    config = ps_config(2, workers=2)
    with running_shards(config, sgd_spec()) as shards, clients(config, "a", "b") as (a, b):
        assert a.wait_consistent(5) and b.wait_consistent(5)
        gs = grads(6, seed=5)
        for i, g in enumerate(gs):
            client = (a, b)[i % 2]
            client.poll()
            _, versions, _ = client.weights()
            assert client.push(g, versions, steps=2, episodes=0) == 2
        va, vb = wait_version(a, 6), wait_version(b, 6)
        assert shards[0].stats()["worker_gradients"] == {"a": 3, "b": 3}
        assert a.global_step == 12  # shard 0's count reaches every client
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(va, INITIAL - LR * np.sum(gs, axis=0), rtol=1e-5, atol=1e-6)


def test_a_late_subscriber_gets_the_current_weights_by_hello() -> None:
    # heartbeats (and idle republishing) every 5 s: only HELLO can bring the weights in time
    config = ps_config(2, heartbeat_interval=5.0)
    with running_shards(config, sgd_spec()) as shards, clients(config, "early") as (early,):
        assert early.wait_consistent(5)
        for g in grads(3):
            early.push(g, [0, 0], steps=1, episodes=0)
        expected = wait_version(early, 3)
        hellos = [s.stats()["hellos"] for s in shards]
        with clients(config, "late") as (late,):
            started = time.monotonic()
            assert late.wait_consistent(3)
            assert time.monotonic() - started < 2.5
            np.testing.assert_array_equal(late.weights()[0], expected)
            assert list(late.weights()[1]) == [3, 3]
        assert all(s.stats()["hellos"] > h for s, h in zip(shards, hellos, strict=True))


# -- stopping, malformed input, state -------------------------------------------------------------


def test_max_global_step_stops_every_shard_cleanly_and_clients_stop_pushing() -> None:
    config = ps_config(2, max_global_step=50)
    stop = StopFlag()
    shards = [Shard(config, i, spec=sgd_spec()) for i in range(2)]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in shards]
    for thread in threads:
        thread.start()
    try:
        with clients(config, "w0") as (client,):
            assert client.wait_consistent(5)
            for g in grads(3):
                client.poll()
                client.push(g, client.weights()[1], steps=20, episodes=1)
            wait_for(lambda: client.stopping, what="the stop announcement", poll=[client])
            for thread in threads:
                thread.join(5)  # they return by themselves
            assert not any(t.is_alive() for t in threads)
            assert client.push(grads(1)[0], [3, 3], steps=1, episodes=0) == 0
            assert client.counters.not_pushed_stopping == 1
            assert client.ready  # the last weights stay usable
            assert client.global_step == 60
        assert all(s.stopping for s in shards)
        assert [s.stats()["version"] for s in shards] == [3, 3]
    finally:
        stop.set()


def test_a_shard_counts_and_drops_bad_messages_and_keeps_serving() -> None:
    config = ps_config(1)
    ctx = zmq.Context.instance()
    with running_shards(config, sgd_spec()) as (shard,), clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        raw = ctx.socket(zmq.PUSH)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(config.parameter_servers.gradients_endpoint(0))
        try:
            raw.send_multipart([b"garbage"])
            wrong_offset = wire.Gradient(0, "evil", 0, 1, 0, 1, np.ones(N, np.float32))
            raw.send_multipart(wire.encode(wrong_offset))
            nan = np.full(N, np.nan, np.float32)
            raw.send_multipart(wire.encode(wire.Gradient(0, "evil", 0, 1, 0, 0, nan)))
            wait_for(lambda: shard.stats()["malformed"] == 2, what="the malformed count")
            wait_for(lambda: shard.stats()["dropped_nonfinite"] == 1, what="the NaN drop")
        finally:
            raw.close()
        (g,) = grads(1)
        client.push(g, [0], steps=1, episodes=0)
        got = wait_version(client, 1)
    np.testing.assert_allclose(got, INITIAL - LR * g, rtol=1e-6)


class FakeCheckpoints:
    """A ``ShardCheckpoints`` in memory: what a CheckpointManager adapter will do for real.
    ``outcomes``: what each save does in turn (True: saved, False: a location refused it,
    an exception: raised); saved once they run out."""

    def __init__(
        self,
        restore: ShardState | None = None,
        *,
        every: bool = False,
        outcomes: list[bool | Exception] | None = None,
    ) -> None:
        self.restored = restore
        self.every = every
        self.outcomes = list(outcomes or [])
        self.saved: list[ShardState] = []

    def restore(self) -> ShardState | None:
        return self.restored

    def due(self, global_step: int) -> bool:
        return self.every and global_step > 0

    def save(self, state: ShardState) -> bool:
        outcome = self.outcomes.pop(0) if self.outcomes else True
        if isinstance(outcome, Exception):
            raise outcome
        if outcome:
            self.saved.append(state)
        return outcome


def test_state_round_trips_and_the_checkpoint_hook_restores_and_saves() -> None:
    config = ps_config(2)
    spec = ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("adam", {"lr": 0.01}),
    )
    with running_shards(config, spec) as shards, clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for g in grads(2):
            client.push(g, [0, 0], steps=5, episodes=1)
        trained = wait_version(client, 2)
        wait_for(lambda: shards[1].stats()["global_step"] == 10, what="the counters")
        states = [s.state() for s in shards]
    assert states[1].offset == 5 and states[1].version == 2 and states[1].global_step == 10
    assert int(states[1].optimizer["step"]) == 2 and states[1].counters["episodes"] == 2
    with pytest.raises(ValueError, match="shard 0/2"):
        Shard(config, 1, spec=spec).load_state(states[0])
    # a restart that restores: the weights come back, and the final state is saved
    hooks = [FakeCheckpoints(state) for state in states]
    with ExitStack() as stack:
        stack.enter_context(running_shards(config, spec, hooks))
        (client,) = stack.enter_context(clients(config, "w1"))
        np.testing.assert_array_equal(wait_version(client, 2), trained)
        assert client.global_step == 10
    assert [len(h.saved) for h in hooks] == [1, 1]
    np.testing.assert_array_equal(hooks[0].saved[0].params, trained[:5])


def test_a_shard_counts_failed_checkpoint_saves_and_trains_on() -> None:
    """A save a location refused and one that raised are counted (``checkpoint_failures`` in
    the stats, which the stop summary and the metric of that name report) and training goes on."""
    config = ps_config(1)
    spec = ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("sgd", {"lr": LR}),
    )
    hook = FakeCheckpoints(every=True, outcomes=[False, OSError("disk gone"), True])
    with running_shards(config, spec, [hook]) as (shard,), clients(config, "w0") as (client,):
        assert client.wait_consistent(5)
        for version in range(4):
            assert client.push(np.ones(N, np.float32), [version], steps=1, episodes=0) == 1
            assert client.wait_consistent(5, newer_than=version)
            wait_for(lambda: shard.stats()["checkpoints_saved"] >= 1, what="a save")
        stats = shard.stats()
    assert stats["checkpoint_failures"] == 2 and stats["checkpoints_saved"] >= 1, stats
    assert stats["version"] == 4  # trained on through both failures


# -- shared statistics and scores -----------------------------------------------------------------


def _statistics_spec(size: int = 3) -> ParameterServerSpec:
    return ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("sgd", {"lr": LR}),
        statistics_size=size,
    )


def test_statistics_are_bounded_by_one_payload_frame() -> None:
    from relaax_zmq.ps.wire import MAX_STATISTICS_VALUES

    assert _statistics_spec(MAX_STATISTICS_VALUES).statistics_size == MAX_STATISTICS_VALUES
    with pytest.raises(ValueError, match=f"in \\[0, {MAX_STATISTICS_VALUES}\\]"):
        _statistics_spec(MAX_STATISTICS_VALUES + 1)


def test_shard_0_adds_statistics_from_every_worker_and_publishes_the_totals() -> None:
    config = ps_config(2, workers=2)
    spec = _statistics_spec()
    with (
        running_shards(config, spec) as shards,
        clients(config, "a", "b", statistics_size=3) as (a, b),
    ):
        assert a.wait_consistent(5) and b.wait_consistent(5)
        a.add_statistics(np.array([1.0, 2.0, 3.0]))
        a.add_statistics(np.array([1.0, 0.0, 0.0]))  # both go in one message
        b.add_statistics(np.array([0.5, 0.5, 1e12]))
        with pytest.raises(ValueError, match="shape"):
            a.add_statistics(np.ones(2))
        with pytest.raises(ValueError, match="finite"):
            a.add_statistics(np.array([np.nan, 0, 0]))
        expected = [2.5, 2.5, 1e12 + 3.0]
        for client in (a, b):  # statistics go out with the next heartbeat (or push)
            wait_for(
                lambda c=client: (
                    c.statistics() is not None and np.array_equal(c.statistics(), expected)
                ),
                what="the totals",
                poll=[a, b],
            )
        assert shards[0].stats()["statistics_updates"] == 2
        assert shards[1].statistics.size == 0  # only shard 0 holds them
        state = shards[0].state()
    np.testing.assert_array_equal(state.extras["statistics"], expected)
    # restored from the state, shard 0 publishes the same totals again
    hooks = [FakeCheckpoints(state), FakeCheckpoints()]
    with running_shards(config, spec, hooks), clients(config, "late", statistics_size=3) as (late,):
        wait_for(
            lambda: late.statistics() is not None,
            what="the restored totals",
            poll=[late],
        )
        np.testing.assert_array_equal(late.statistics(), expected)


def test_scores_in_worker_heartbeats_rank_the_shard_state() -> None:
    config = ps_config(1, workers=2)
    with running_shards(config, sgd_spec()) as (shard,), clients(config, "a", "b") as (a, b):
        assert shard.score() is None
        a.score, b.score = 10.0, float("nan")
        pump([a, b], 0.3)
        assert shard.score() == 10.0  # a worker without a score does not count
        b.score = 20.0
        wait_for(lambda: shard.score() == 15.0, what="the mean score", poll=[a, b])
        assert shard.state().score == 15.0


def test_updater_takes_payloads_in_pieces_for_every_rule() -> None:
    from relaax_zmq.ps.optimizer import Optimizer
    from relaax_zmq.ps.updates import SliceUpdater

    g = np.arange(N, dtype=np.float32) / N
    pieces = wire.Payload([g[:4], g[4:]])
    for options in ({}, {"combine": "average", "average_window": 1}, {"update": "sync"}):
        config = ps_config(1, **options).parameter_servers
        optimizer = Optimizer(OptimizerSpec("sgd", {"lr": LR}), N)
        updater = SliceUpdater(config, INITIAL, optimizer, sync_workers=1)
        assert updater.offer("w", 0, pieces) == "applied", options
        np.testing.assert_allclose(updater.params, INITIAL - LR * g, rtol=1e-6)
        nan = wire.Payload([g[:4], np.full(N - 4, np.nan, np.float32)])
        assert updater.offer("w", 1, nan) == "dropped_nonfinite", options
