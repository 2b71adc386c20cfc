"""Fuzz target ``shard``: a parameter-server shard's handling of what workers push to it.

Each input picks a setup (shard 0 or 1 of two; async fifo, average or DC-ASGD, or sync
rounds; sgd with momentum, rmsprop or adam; a constant, linear or growing exponential
learning-rate schedule; with or without ``max_staleness`` and ``max_global_step``) and
feeds a fresh ``Shard`` up to ``MAX_OPS`` messages as its PULL hands them over: raw
frames, or gradients, hellos, heartbeats and statistics with chosen fields (any version,
step count, offset, length, values including NaN, infinities and extremes), some of them
then damaged. Payloads come in frames of ``CHUNK_VALUES`` = 2 values here (1 Mi in
production), so that every slice arrives in several frames. After each message the
shard does what its loop does: closes a sync round, publishes weights, statistics and a
heartbeat over a real PUB (inproc), checks for the stop. Properties:

- decoding and handling raise nothing but ``ProtocolError`` (which ``_drain`` counts as
  malformed); nothing the loop does afterwards raises (it is not guarded);
- a refused message changes nothing: weights, version, counters, statistics; weights
  change only with a new version made from gradients;
- the weights and the shared statistics stay finite, the counters fit their wire fields.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

import atheris
import numpy as np
import zmq

from relaax_zmq.algorithms.common.schedules import exponential, linear
from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.core import OptimizerSpec, ParameterServerSpec
from relaax_zmq.errors import ProtocolError
from relaax_zmq.ps import wire
from relaax_zmq.ps.publisher import Publisher
from relaax_zmq.ps.shard import Shard
from relaax_zmq.testing import LINEAR_PG_PATH

from .frames import Finding, take_frames

#: Messages read from one input at most.
MAX_OPS = 16
PARAMS = 10
STATISTICS = 3
WORKER_NAMES = ("a", "b", "c")
_U64 = (1 << 64) - 1
T = TypeVar("T")

#: Payload values per frame while fuzzing (1 Mi in production; see the module docstring).
CHUNK_VALUES = 2

MODES = (
    {"update": "async", "combine": "fifo"},
    {"update": "async", "combine": "average", "average_window": 2},
    {"update": "async", "combine": "delay_compensation"},
    {"update": "sync"},
)
OPTIMIZERS = (
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01}),
    ("adam", {"lr": 0.01}),
)
SCHEDULES = (None, linear(0.1, 0.0, 1000), exponential(0.01, 2.0, 10, final=1.0))


@functools.cache
def app(mode: int, staleness: bool, stop: bool) -> AppConfig:
    section = {**MODES[mode], "shards": 2, "checkpoint": {"dir": None}}
    section.update({"max_staleness": 2} if staleness else {})
    section.update({"max_global_step": 1000} if stop else {})
    return parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit"},
            "algorithm": {"path": str(LINEAR_PG_PATH)},
            "workers": {"count": 2},
            "parameter_servers": section,
        }
    )


@functools.cache
def spec(optimizer: int, schedule: int) -> ParameterServerSpec:
    name, hyper = OPTIMIZERS[optimizer]
    initial = np.linspace(-1.0, 1.0, PARAMS).astype(np.float32)
    return ParameterServerSpec(
        param_count=PARAMS,
        initial_parameters=lambda seed: initial.copy(),
        optimizer=OptimizerSpec(name, hyper, lr_schedule=SCHEDULES[schedule]),
        statistics_size=STATISTICS,
    )


@functools.cache
def publisher() -> zmq.Socket:
    """The PUB every shard publishes on (nobody listens: ZeroMQ drops what it sends)."""
    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.bind("inproc://fuzz-shard-weights")
    return sock


def seeds() -> list[bytes]:
    """No seeds: messages are read from any bytes."""
    return []


class Driver:
    """Feeds one shard the messages an input describes, checking it after each."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        # set here, not on import (the runner imports for seeds); chunking reads it there
        wire.payload.CHUNK_VALUES = CHUNK_VALUES
        self.fdp = fdp
        config = app(self.choose(len(MODES)), fdp.ConsumeBool(), fdp.ConsumeBool())
        optimizer = spec(self.choose(len(OPTIMIZERS)), self.choose(len(SCHEDULES)))
        self.shard = Shard(config, self.choose(2), spec=optimizer)
        self.shard._publisher = Publisher(publisher(), self.shard.shard, self.shard.slice.count)
        self.now = 1000.0

    def choose(self, count: int) -> int:
        return self.fdp.ConsumeIntInRange(0, count - 1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.choose(len(options))]

    def number(self, near: int = 0) -> int:
        """A u64 field: mostly a current value or near it, else huge or anything."""
        choice = self.choose(16)
        if choice < 10:
            return (near, near, near, near, near, near, max(0, near - 1), near + 1, 0, 1)[choice]
        if choice < 15:
            return (1 << 53, (1 << 53) + 1, 1 << 62, 1 << 63, _U64)[choice - 10]
        return self.fdp.ConsumeIntInRange(0, _U64)

    def floats(self, count: int) -> list[float]:
        """Gradient or statistics values: ordinary, extreme (float32's largest), or any."""
        options = (0.0, 1.0, -1.0, 1e-3, 1e30, -3e38, 3e38)
        return [
            options[c]
            if (c := self.choose(len(options) + 1)) < len(options)
            else self.fdp.ConsumeFloat()
            for _ in range(count)
        ]

    # -- one message ----------------------------------------------------------------------

    def message(self) -> list[bytes]:
        """The frames of one message: raw, or built from chosen fields, maybe damaged."""
        if self.choose(8) == 0:
            return take_frames(self.fdp)
        s = self.shard
        index = s.shard if self.choose(16) else self.choose(3)
        worker = self.pick(WORKER_NAMES)
        version = s.updater.version
        kind = self.choose(4)
        count = s.slice.count if self.choose(8) else self.choose(12)
        message: wire.ToShard
        if kind == 0:
            offset = s.slice.offset if self.choose(8) else self.number()
            values = np.array(self.floats(count), np.float32)
            steps, episodes = self.number(), self.number()
            fields = (index, worker, self.number(version), steps, episodes, offset, values)
            message = wire.Gradient(*fields)
        elif kind == 1:
            message = wire.Hello(index, worker, self.number(version))
        elif kind == 2:
            score = self.pick((float("nan"), 1.0, self.fdp.ConsumeFloat()))
            step = self.number(s.global_step)
            message = wire.WorkerHeartbeat(index, worker, step, self.fdp.ConsumeBool(), score)
        else:
            size = STATISTICS if self.choose(4) else self.choose(6)
            values = np.array(self.pick((self.floats(size), [1e308] * size)), np.float64)
            message = wire.Statistics(index, worker, values)
        try:
            frames = [bytes(memoryview(f)) for f in wire.encode(message)]
        except ValueError:  # a field the wire cannot carry: the worker could not send it
            return take_frames(self.fdp)
        if self.choose(8) == 0:  # damaged: one frame cut short and given other bytes
            at = self.choose(len(frames))
            keep = self.choose(len(frames[at]) + 1)
            frames[at] = frames[at][:keep] + self.fdp.ConsumeBytes(self.choose(16))
        return frames

    def deliver(self, frames: list[bytes]) -> None:
        """Hand ``frames`` to the shard as ``Shard._drain`` does, then run its loop's step."""
        s = self.shard
        before = _snapshot(s)
        try:
            publish = s.handle(
                wire.decode_to_shard([zmq.Frame(f) for f in frames], s.shard), self.now
            )
        except ProtocolError:
            after = _snapshot(s)
            if not _same(before, after):
                raise Finding(f"a refused message changed the shard: {before} -> {after}") from None
        else:
            s.follow(publish, self.now)
        after = _snapshot(s)
        if not np.array_equal(before["params"], after["params"]) and (
            after["version"] == before["version"]
        ):
            raise Finding("the weights changed without a new version")
        self.loop_step()
        check_shard(s)

    def loop_step(self) -> None:
        """What ``Shard._loop`` does after a drain (rounds, publications, beat, stop)."""
        s = self.shard
        s.close_round(self.now)
        s._publish_weights(self.now)
        s._publish_statistics()
        s._beat(self.now, s.ps.heartbeat_interval)
        if s.stop_at is None:
            s.follow(s.check_stop(self.now), self.now)

    def time_passes(self) -> None:
        interval = self.shard.ps.heartbeat_interval
        self.now += self.pick((0.01, interval, interval * self.shard.ps.heartbeat_liveness + 0.1))
        self.loop_step()
        check_shard(self.shard)


def test_one_input(data: bytes) -> None:
    """Feed a fresh shard the messages ``data`` stands for."""
    fdp = atheris.FuzzedDataProvider(data)
    driver = Driver(fdp)
    for _ in range(MAX_OPS):
        if not fdp.remaining_bytes():
            break
        if driver.choose(6) == 0:
            driver.time_passes()
        else:
            driver.deliver(driver.message())


def check_shard(shard: Shard) -> None:
    """Finite weights, optimizer state and statistics; counters that fit the wire."""
    if not np.isfinite(shard.updater.params).all():
        raise Finding(f"non-finite weights {shard.updater.params}")
    for name, array in shard.updater.optimizer.arrays.items():
        if not np.isfinite(array).all():
            raise Finding(f"non-finite optimizer state {name} {array}")
    if not np.isfinite(shard.statistics).all():
        raise Finding(f"non-finite statistics {shard.statistics}")
    for name in ("global_step", "episodes"):
        if not 0 <= getattr(shard, name) <= _U64:
            raise Finding(f"{name} {getattr(shard, name)} does not fit the wire")
    if not 0 <= shard.updater.version <= _U64:
        raise Finding(f"version {shard.updater.version} does not fit the wire")


def _snapshot(shard: Shard) -> dict[str, Any]:
    return {
        "params": shard.updater.params.copy(),
        "version": shard.updater.version,
        "global_step": shard.global_step,
        "episodes": shard.episodes,
        "statistics": shard.statistics.copy(),
        "pending": shard.updater.pending(),
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(
        np.array_equal(a[k], b[k], equal_nan=True) if isinstance(a[k], np.ndarray) else a[k] == b[k]
        for k in a
    )
