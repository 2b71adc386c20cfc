"""The learner's intake: one schema, stale unrolls dropped and counted, batches stacked."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.learner.assembly import BatchAssembler, lag_bucket
from relaax_zmq.learner.wire import TensorMessage


def unrolls(
    n: int = 1, version: int = 10, t: int = 3, value: float = 0.0, **extra
) -> TensorMessage:
    fields = {
        "obs": np.full((n, t + 1, 4), value, np.float32),
        "action": np.zeros((n, t), np.int64),
        **extra,
    }
    return TensorMessage("unrolls", fields, "worker-0", version, n * t, 1)


def test_items_are_stacked_into_batches_of_batch_size_in_arrival_order() -> None:
    intake = BatchAssembler(batch_size=3, max_lag=5)
    assert intake.add(unrolls(2, value=1.0), 10) == 2
    assert intake.take(10) is None  # two of three
    intake.add(unrolls(2, value=2.0), 10)
    batch = intake.take(10)
    assert batch is not None and len(batch) == 3 and len(intake) == 1
    assert batch.fields["obs"].shape == (3, 4, 4)
    assert batch.fields["obs"][:, 0, 0].tolist() == [1.0, 1.0, 2.0]
    assert batch.steps == 9 and batch.episodes == 2  # steps spread over items, episodes once each
    assert batch.versions.tolist() == [10, 10, 10]


def test_stale_unrolls_are_dropped_and_every_lag_is_counted() -> None:
    intake = BatchAssembler(batch_size=1, max_lag=4)
    intake.add(unrolls(1, version=10), 10)  # lag 0
    intake.add(unrolls(2, version=7), 10)  # lag 3
    intake.add(unrolls(1, version=5), 10)  # lag 5: dropped
    c = intake.counters
    assert (c.items, c.stale_items, c.lag_max, c.lag_sum) == (3, 1, 3, 6)
    assert c.lag_histogram[lag_bucket(0)] == 1 and c.lag_histogram[lag_bucket(3)] == 2
    assert c.mean_lag == 2.0
    assert intake.take(10) is not None
    assert intake.take(12) is None  # the two of version 7 lag 5 now: dropped while waiting
    assert c.stale_items == 3 and len(intake) == 0


def test_a_message_of_another_schema_is_refused_and_named() -> None:
    intake = BatchAssembler(batch_size=2, max_lag=4)
    intake.add(unrolls(1), 10)
    assert intake.add(unrolls(1, t=4), 10) == 0
    assert "obs: <f4[4, 4]" in intake.last_refusal and "obs: <f4[5, 4]" in intake.last_refusal
    assert intake.add(unrolls(1, extra=np.zeros((1, 3))), 10) == 0
    assert intake.add(TensorMessage("transitions", {"x": np.zeros(2)}), 10) == 0
    bad_counts = {"obs": np.zeros((2, 4, 4), np.float32), "action": np.zeros((1, 3), np.int64)}
    assert intake.add(TensorMessage("unrolls", bad_counts), 10) == 0
    assert intake.counters.refused == 4 and len(intake) == 1
    assert intake.add(unrolls(1), 10) == 1  # negative control: the schema itself still goes


def test_waiting_items_are_bounded() -> None:
    intake = BatchAssembler(batch_size=2, max_lag=100, max_pending=4)
    for _ in range(5):
        intake.add(unrolls(2), 10)
    assert len(intake) == 4 and intake.counters.overflow_items == 6


def test_batch_size_is_checked() -> None:
    with pytest.raises(ValueError, match="batch_size: expected >= 1, got 0"):
        BatchAssembler(0, 1)
