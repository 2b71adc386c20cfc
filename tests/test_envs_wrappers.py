"""environment.wrappers: parsed by the config, applied after make (Atari frames, stacking, masks)."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.config import parse_config
from relaax_zmq.envs.wrapper_specs import parse_wrapper
from relaax_zmq.envs.wrappers import env_maker, make_env
from relaax_zmq.errors import ConfigError


def test_specs_parse_and_bad_ones_name_the_problem() -> None:
    assert parse_wrapper("frame_stack:4") == ("frame_stack", (4,))
    assert parse_wrapper("select:0,2") == ("select", (0, 2))
    assert parse_wrapper("atari") == ("atari", ())
    for spec, message in (
        ("blur", "expected one of"),
        ("atari:3", "no arguments"),
        ("frame_stack", "arguments"),
        ("frame_stack:0", "N >= 1"),
        ("select:a", "integers"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_wrapper(spec)


def test_the_config_refuses_a_bad_wrapper_with_its_key() -> None:
    app = {
        "version": 1,
        "environment": {"name": "CartPole-v1", "wrappers": ["atari", "nope"]},
        "algorithm": {"name": "ppo"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(app)
    assert "environment.wrappers[1]" in str(caught.value)
    with pytest.raises(ValueError):
        env_maker("CartPole-v1", wrappers=["frame_stack:x"])


def test_select_hides_cartpole_velocities() -> None:
    env = make_env("CartPole-v1", wrappers=["select:0,2"])
    full = make_env("CartPole-v1")
    obs, _ = env.reset(seed=1)
    whole, _ = full.reset(seed=1)
    assert env.observation_space.shape == (2,)
    np.testing.assert_array_equal(obs, whole[[0, 2]])
    with pytest.raises(ValueError, match="out of range"):
        make_env("CartPole-v1", wrappers=["select:9"])


def test_atari_frames_are_84x84_grayscale_stacked_channels_first() -> None:
    env = make_env("ALE/Pong-v5", {"frameskip": 1}, ["atari", "frame_stack:4", "clip_reward"])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    obs, reward, *_ = env.step(0)
    assert obs.shape == (4, 84, 84) and reward in (-1.0, 0.0, 1.0)
    env.close()


def test_lunar_lander_makes_with_box2d() -> None:
    env = make_env("LunarLander-v3")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,)
    env.close()
