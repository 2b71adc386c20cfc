"""replay/limiter.py: Reverb's SampleToInsertRatio and MinSize rules, exact boundaries, the
ratio kept within the buffer over a long random interleaving, no deadlock, blocked counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relaax_zmq.replay import RateLimiter


def test_exact_boundaries():
    limiter = RateLimiter(1.0, 1, 1.0)  # min_diff 0, max_diff 2
    assert (limiter.min_diff, limiter.max_diff) == (0.0, 2.0)
    assert not limiter.can_sample(1)
    assert limiter.can_insert(5)  # below the minimum size every insert passes
    limiter.inserted(1)  # diff 1
    assert limiter.can_sample(1) and not limiter.can_sample(2)  # 1 - 1 >= 0; 1 - 2 < 0
    assert limiter.can_insert(1) and not limiter.can_insert(2)  # 1 + 1 <= 2; 1 + 2 > 2
    limiter.sampled(1)  # diff 0
    assert not limiter.can_sample(1)
    assert limiter.can_insert(2) and not limiter.can_insert(3)


def test_min_size_gates_samples_only():
    for spi in (None, 0):
        limiter = RateLimiter(spi, 5, 0.0)
        assert limiter.samples_per_insert is None
        for _ in range(4):
            assert not limiter.can_sample(1) and limiter.can_insert(1)
            limiter.inserted(1)
        assert not limiter.can_sample(1)
        limiter.inserted(1)
        assert limiter.can_sample(1) and limiter.can_sample(10**9)
        limiter.sampled(10**6)
        assert limiter.can_sample(10**6)
        limiter.inserted(10**6)
        assert limiter.can_insert(10**9)
        assert limiter.blocked_inserts == 0 and limiter.blocked_samples == 5


def test_blocked_counters_count_each_refusal():
    limiter = RateLimiter(2.0, 3, 2.0)  # offset 6: min_diff 4, max_diff 8
    for _ in range(3):
        assert not limiter.can_sample(1)
    assert limiter.blocked_samples == 3 and limiter.blocked_inserts == 0
    limiter.inserted(3)  # diff 6
    assert limiter.can_sample(2) and not limiter.can_sample(3)
    assert limiter.can_insert(1) and not limiter.can_insert(2)
    assert not limiter.can_insert(2)
    assert limiter.blocked_samples == 4 and limiter.blocked_inserts == 2
    limiter.inserted(1)  # diff 8: inserts wait for samples
    limiter.sampled(4)  # diff 4: samples wait for inserts
    assert not limiter.can_sample(1) and limiter.can_insert(2)
    assert limiter.blocked_samples == 5 and limiter.blocked_inserts == 2


def test_a_first_batch_beyond_the_minimum_size_is_let_through_then_paid_back():
    limiter = RateLimiter(4.0, 10, 4.0)  # min_diff 36, max_diff 44
    assert limiter.can_insert(100)
    limiter.inserted(100)  # diff 400
    assert not limiter.can_insert(1)
    assert limiter.can_sample(364) and not limiter.can_sample(365)
    limiter.sampled(360)  # diff 40
    assert limiter.can_insert(1) and not limiter.can_insert(2)


@pytest.mark.parametrize(
    ("spi", "buffer", "max_insert", "max_sample"),
    [(2.5, 8.0, 3, 8), (0.25, 1.0, 1, 1), (4.0, 4.0, 1, 1), (1.0, 1.0, 1, 1)],
)
def test_random_interleaving_keeps_the_ratio_and_never_deadlocks(
    spi, buffer, max_insert, max_sample
):
    rng = np.random.default_rng(0)
    min_size = 20
    limiter = RateLimiter(spi, min_size, buffer)
    offset = min_size * spi
    assert max_sample + max_insert * spi <= 2 * buffer  # the progress condition
    inserts = samples = 0
    for _ in range(4000):
        n_insert = int(rng.integers(1, max_insert + 1))
        n_sample = int(rng.integers(1, max_sample + 1))
        may_insert, may_sample = limiter.can_insert(n_insert), limiter.can_sample(n_sample)
        assert may_insert or may_sample, (inserts, samples)  # one side can always move
        if may_insert and (not may_sample or rng.random() < 0.5):
            limiter.inserted(n_insert)
            inserts += n_insert
        else:
            limiter.sampled(n_sample)
            samples += n_sample
        assert (limiter.inserts, limiter.samples) == (inserts, samples)
        if inserts < min_size:
            assert samples == 0
        else:
            assert abs(inserts * spi - samples - offset) <= buffer + 1e-9
    assert inserts > 300 and samples > 300 * min(spi, 1.0)  # both sides progressed
    assert abs(limiter.ratio - spi) <= (offset + buffer) / inserts + 1e-12
    assert limiter.blocked_inserts > 0 and limiter.blocked_samples > 0


def greedy_samples(spi: float, inserts: int) -> int:
    """Samples a greedy learner gets, one at a time, after each single insert."""
    limiter = RateLimiter(spi, 10, max(1.0, spi))
    for _ in range(inserts):
        assert limiter.can_insert(1)
        limiter.inserted(1)
        while limiter.can_sample(1):
            limiter.sampled(1)
    return limiter.samples


def test_a_lower_ratio_lets_fewer_samples_through():
    four, eight = greedy_samples(4.0, 1000), greedy_samples(8.0, 1000)
    assert four < eight
    # the greedy learner stops at min_diff: samples = inserts * spi - (min_size * spi - buffer)
    assert (four, eight) == (4 * 1000 - 36, 8 * 1000 - 72)


def test_ratio_property():
    limiter = RateLimiter(2.0, 1, 2.0)
    assert limiter.ratio == 0.0
    limiter.inserted(4)
    limiter.sampled(6)
    assert limiter.ratio == 1.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1.0, 10, 5.0), "samples_per_insert: expected None or a finite number >= 0, got -1.0"),
        ((math.nan, 10, 5.0), "samples_per_insert: .* got nan"),
        ((math.inf, 10, 5.0), "samples_per_insert: .* got inf"),
        ((1.0, 0, 5.0), "min_size_to_sample: expected an integer >= 1, got 0"),
        ((1.0, 2.5, 5.0), "min_size_to_sample: .* got 2.5"),
        ((1.0, True, 5.0), "min_size_to_sample: .* got True"),
        ((1.0, 10, -1.0), "error_buffer: expected a finite number >= 0, got -1.0"),
        ((1.0, 10, math.nan), "error_buffer: .* got nan"),
        (
            (4.0, 10, 3.9),
            r"error_buffer: expected >= max\(1, samples_per_insert\) = 4.0, got 3.9 .*deadlock",
        ),
        ((0.5, 10, 0.9), r"= 1.0, got 0.9 .*deadlock"),
    ],
)
def test_invalid_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        RateLimiter(*args)


def test_invalid_counts():
    limiter = RateLimiter(1.0, 1, 1.0)
    for call in (limiter.can_sample, limiter.can_insert, limiter.inserted, limiter.sampled):
        with pytest.raises(ValueError, match="item count: expected an integer >= 0, got -1"):
            call(-1)
        with pytest.raises(ValueError, match="got 1.0"):
            call(1.0)
    assert limiter.inserts == limiter.samples == 0
