"""The shard optimizer's learning-rate schedule and parameter groups, against the reference kernels."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.core import OptimizerSpec, ParamGroup
from relaax_zmq.kernels import reference
from relaax_zmq.ps.optimizer import Optimizer, segments


def test_segments_clip_the_groups_to_the_slice_and_fill_the_gaps() -> None:
    spec = OptimizerSpec("sgd", {"lr": 1.0}, groups=(ParamGroup(10, 5, 0.5), ParamGroup(20, 10, 0)))
    assert segments(spec, 0, 40) == [
        (0, 10, 1.0),
        (10, 15, 0.5),
        (15, 20, 1.0),
        (20, 30, 0.0),
        (30, 40, 1.0),
    ]
    assert segments(spec, 12, 10) == [(0, 3, 0.5), (3, 8, 1.0), (8, 10, 0.0)]  # [12, 22)
    assert segments(spec, 30, 5) == [(0, 5, 1.0)]
    assert segments(OptimizerSpec("sgd", {"lr": 1.0}), 7, 3) == [(0, 3, 1.0)]


def test_overlapping_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        OptimizerSpec("adam", {"lr": 1.0}, groups=(ParamGroup(0, 10, 1), ParamGroup(5, 10, 2)))
    with pytest.raises(ValueError, match="lr_scale"):
        ParamGroup(0, 1, -1.0)


def test_adam_groups_step_each_range_at_its_own_rate() -> None:
    rng = np.random.default_rng(0)
    spec = OptimizerSpec("adam", {"lr": 0.1}, groups=(ParamGroup(4, 4, 0.25), ParamGroup(8, 2, 0)))
    # the shard holding elements [3, 11) of the vector
    optimizer = Optimizer(spec, 8, offset=3)
    param = rng.standard_normal(8).astype(np.float32)
    expected = param.copy()
    states = {k: np.zeros(8, np.float32) for k in ("m", "v")}
    for step in (1, 2):
        grad = rng.standard_normal(8).astype(np.float32)
        optimizer.apply(param, grad)
        for (start, stop), lr in (((0, 1), 0.1), ((1, 5), 0.025), ((5, 7), 0.0), ((7, 8), 0.1)):
            reference.adam_step(
                expected[start:stop],
                grad[start:stop],
                states["m"][start:stop],
                states["v"][start:stop],
                step,
                lr=lr,
            )
    np.testing.assert_allclose(param, expected, rtol=1e-6, atol=1e-7)


def test_the_schedule_sets_the_learning_rate_by_global_step() -> None:
    spec = OptimizerSpec("sgd", {"lr": 1.0}, lr_schedule=lambda step: 1.0 - step / 100)
    optimizer = Optimizer(spec, 2)
    param = np.zeros(2, np.float32)
    optimizer.apply(param, np.ones(2, np.float32))  # lr 1.0 at step 0
    optimizer.at_global_step(50)
    assert optimizer.lr == 0.5 and spec.learning_rate(50) == 0.5
    optimizer.apply(param, np.ones(2, np.float32))
    np.testing.assert_allclose(param, [-1.5, -1.5])


def test_a_gradient_in_pieces_steps_exactly_like_the_whole_one_across_groups() -> None:
    rng = np.random.default_rng(1)
    spec = OptimizerSpec("adam", {"lr": 0.1}, groups=(ParamGroup(3, 6, 0.5),))
    whole, pieces = Optimizer(spec, 12), Optimizer(spec, 12)
    a = rng.standard_normal(12).astype(np.float32)
    b = a.copy()
    for _ in range(3):
        grad = rng.standard_normal(12).astype(np.float32)
        whole.apply(a, grad)
        pieces.apply(b, [grad[:5], grad[5:7], grad[7:]])  # boundaries inside and across groups
    np.testing.assert_array_equal(a, b)
    for name in whole.arrays:
        np.testing.assert_array_equal(whole.arrays[name], pieces.arrays[name])
