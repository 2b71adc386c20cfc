"""Jittered exponential backoff."""

from __future__ import annotations

import random

import pytest

from relaax_zmq.client.backoff import Backoff


class TopRng(random.Random):
    """Always draws the upper bound: exposes the nominal delays."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_nominal_delays_double_up_to_the_maximum() -> None:
    slept: list[float] = []
    backoff = Backoff(0.1, 1.0, rng=TopRng(), sleep=slept.append)
    for _ in range(7):
        backoff.wait()
    assert slept == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_each_delay_is_drawn_from_half_to_full_nominal() -> None:
    backoff = Backoff(0.05, 2.0, rng=random.Random(7), sleep=lambda _: None)
    delays, nominals = [], []
    for _ in range(200):
        nominals.append(backoff.nominal)
        delays.append(backoff.next_delay())
    for delay, nominal in zip(delays, nominals, strict=True):
        assert nominal / 2 <= delay <= nominal
    capped = delays[20:]
    assert min(capped) < 1.2 and max(capped) > 1.8  # jitter spreads over [1, 2]


def test_wait_never_sleeps_past_the_limit() -> None:
    slept: list[float] = []
    backoff = Backoff(4.0, 8.0, rng=TopRng(), sleep=slept.append)
    assert backoff.wait(limit=0.5) == 0.5
    assert slept == [0.5]


@pytest.mark.parametrize("initial, maximum", [(0.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum)
