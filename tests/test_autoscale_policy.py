"""The autoscaler's policy without sockets or processes: made-up looks at the broker."""

from __future__ import annotations

import pytest

from relaax_zmq.autoscale import Observation, ScalingPolicy
from relaax_zmq.config.operations import AutoscaleConfig

CONFIG = AutoscaleConfig(
    enabled=True, min=1, max=4, high_water=0.9, low_water=0.3, up_after=2.0, down_after=10.0,
    up_step=1, cooldown=5.0,
)  # fmt: skip


def look(t: float, sessions: int, workers: int, *, refused: int = 0, per: int = 8) -> Observation:
    """A look at ``t`` with ``workers`` registered workers of ``per`` sessions each."""
    return Observation(t, refused, sessions, workers * per, workers, per)


def test_below_min_adds_at_once_without_waiting() -> None:
    policy = ScalingPolicy(CONFIG, 2, 4)
    decision = policy.decide(look(0.0, 0, 0))
    assert decision.change == 2 and "below min 2" in decision.reason


def test_high_load_must_last_up_after_then_adds_one_step() -> None:
    policy = ScalingPolicy(CONFIG, 1, 4)
    assert policy.decide(look(0.0, 8, 1)).change == 0  # just became high
    assert policy.decide(look(1.0, 8, 1)).change == 0
    added = policy.decide(look(2.0, 8, 1))
    assert added.change == 1 and "load 1.00 >= 0.9 for 2.0 s" in added.reason


def test_a_dip_resets_the_high_clock() -> None:
    policy = ScalingPolicy(CONFIG, 1, 4)
    policy.decide(look(0.0, 8, 1))
    policy.decide(look(1.5, 4, 1))  # load 0.5: not high
    assert policy.decide(look(2.5, 8, 1)).change == 0
    assert policy.decide(look(4.5, 8, 1)).change == 1


def test_refused_sessions_count_as_high_demand_even_below_high_water() -> None:
    policy = ScalingPolicy(CONFIG, 1, 4)
    policy.decide(look(0.0, 4, 1, refused=0))  # the first look only sets the baseline
    assert policy.decide(look(1.0, 4, 1, refused=3)).change == 0
    added = policy.decide(look(3.0, 4, 1, refused=5))
    assert added.change == 1 and added.reason.startswith("sessions refused")


def test_cooldown_after_a_change_and_never_above_max() -> None:
    policy = ScalingPolicy(CONFIG, 1, 2)
    policy.decide(look(0.0, 8, 1))
    assert policy.decide(look(2.0, 8, 1)).change == 1
    assert policy.decide(look(3.0, 16, 2)).reason == "cooldown"
    assert policy.decide(look(6.0, 16, 2)).change == 0
    held = policy.decide(look(9.0, 16, 2))
    assert held.change == 0 and held.reason == "at max 2"


def test_up_step_is_capped_by_max() -> None:
    config = AutoscaleConfig(**{**vars(CONFIG), "up_step": 3})
    policy = ScalingPolicy(config, 1, 3)
    policy.decide(look(0.0, 16, 2))
    assert policy.decide(look(2.0, 16, 2)).change == 1


def test_low_load_must_last_down_after_then_removes_one() -> None:
    policy = ScalingPolicy(CONFIG, 1, 4)
    assert policy.decide(look(0.0, 2, 3)).change == 0  # 2 of 24: low
    assert policy.decide(look(9.0, 2, 3)).change == 0
    removed = policy.decide(look(10.0, 2, 3))
    assert removed.change == -1 and "load 0.08 < 0.3 for 10.0 s" in removed.reason


def test_never_removes_below_min_or_when_the_rest_would_be_too_full() -> None:
    policy = ScalingPolicy(CONFIG, 2, 4)
    for t in (0.0, 20.0, 40.0):
        assert policy.decide(look(t, 0, 2)).change == 0  # at min
    # 7 sessions on 3 workers of 10: load 0.23 < 0.3, but 7 on the 2 left is 0.35: fine
    policy = ScalingPolicy(CONFIG, 1, 4)
    policy.decide(look(0.0, 7, 3, per=10))
    assert policy.decide(look(10.0, 7, 3, per=10)).change == -1
    # 1 session on 2 workers of 1: load 0.5 < low_water 0.6, but the one left would be full
    tight = ScalingPolicy(AutoscaleConfig(**{**vars(CONFIG), "low_water": 0.6}), 1, 4)
    tight.decide(look(0.0, 1, 2, per=1))
    assert tight.decide(look(20.0, 1, 2, per=1)).change == 0


def test_refusals_block_removal() -> None:
    policy = ScalingPolicy(CONFIG, 1, 4)
    policy.decide(look(0.0, 1, 3, refused=0))
    for t in (5.0, 10.0, 15.0):
        assert policy.decide(look(t, 1, 3, refused=int(t))).change >= 0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="0 <= min <= max"):
        ScalingPolicy(CONFIG, 3, 2)
    assert ScalingPolicy(CONFIG, 0, 1).load(look(0.0, 0, 0)) == 0.0
    assert ScalingPolicy(CONFIG, 0, 1).load(look(0.0, 3, 0)) == 1.0
