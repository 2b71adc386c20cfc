"""schedules.py: values per step against closed forms, and config parsing errors."""

from __future__ import annotations

import math

import pytest

from relaax_zmq.algorithms.common.schedules import (
    Schedule,
    constant,
    exponential,
    linear,
    make_schedule,
)


def test_constant():
    schedule = constant(0.5)
    assert isinstance(schedule, Schedule)
    assert [schedule(s) for s in (0, 10, 10**9)] == [0.5, 0.5, 0.5]


def test_linear_decays_then_stays():
    schedule = linear(3e-4, 0.0, 1000)
    for step in range(0, 1001, 50):
        assert math.isclose(schedule(step), 3e-4 * (1 - step / 1000), abs_tol=1e-15)
    assert schedule(1000) == 0.0 and schedule(5000) == 0.0
    assert schedule(-10) == 3e-4
    assert linear(1.0, 2.0, 4)(2) == 1.5  # growth works too


def test_exponential_with_and_without_floor():
    schedule = exponential(1.0, 0.5, 100)
    assert schedule(0) == 1.0
    assert math.isclose(schedule(100), 0.5) and math.isclose(schedule(250), 0.5**2.5)
    floored = exponential(1.0, 0.5, 100, final=0.2)
    assert math.isclose(floored(200), 0.25) and floored(300) == 0.2 and floored(10**6) == 0.2
    capped = exponential(1.0, 2.0, 10, final=3.0)
    assert math.isclose(capped(10), 2.0) and capped(100) == 3.0


def test_make_schedule_parses_config_values():
    assert make_schedule(0.1)(123) == 0.1
    assert make_schedule(2)(0) == 2.0
    lin = make_schedule({"kind": "linear", "initial": 3e-4, "final": 0.0, "steps": 1000000})
    assert lin == linear(3e-4, 0.0, 1000000)
    assert math.isclose(lin(500000), 1.5e-4)
    exp = make_schedule({"kind": "exponential", "initial": 1.0, "rate": 0.1, "steps": 10.0})
    assert math.isclose(exp(10), 0.1)
    assert make_schedule({"kind": "constant", "value": 7})(5) == 7.0
    assert make_schedule(lin) is lin


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            {"kind": "cosine"},
            r"expected one of \['constant', 'exponential', 'linear'\], got 'cosine'",
        ),
        ({"initial": 1.0}, r"expected one of .*, got None"),
        (
            {"kind": "linear", "initial": 1.0, "final": 0.0, "step": 5},
            r"linear schedule: expected keys \['final', 'initial', 'steps'\], got \['final', 'initial', 'step'\]",
        ),
        (
            {"kind": "linear", "initial": 1.0, "final": 0.0},
            r"expected keys .*got \['final', 'initial'\]",
        ),
        (
            {"kind": "exponential", "initial": 1.0, "rate": 0.5, "steps": 1, "floor": 0},
            r"optional \['final'\]",
        ),
        (
            {"kind": "linear", "initial": "big", "final": 0.0, "steps": 5},
            r"initial: expected a number, got 'big'",
        ),
        (
            {"kind": "linear", "initial": 1.0, "final": 0.0, "steps": 0},
            r"steps: expected a positive number of steps, got 0",
        ),
        (
            {"kind": "linear", "initial": 1.0, "final": 0.0, "steps": 2.5},
            r"steps: expected a whole number of steps, got 2.5",
        ),
        (
            {"kind": "exponential", "initial": 1.0, "rate": -1, "steps": 3},
            r"rate: expected a positive number, got -1",
        ),
        ("3e-4", r"expected a number or a mapping with 'kind', got str '3e-4'"),
        (True, r"expected a number or a mapping with 'kind', got bool True"),
    ],
)
def test_make_schedule_errors_name_expected_and_got(spec, message):
    with pytest.raises(ValueError, match=message):
        make_schedule(spec)
