"""relaax_zmq.config.fitting: spaces to input/output sections, presets found or fitted."""

from __future__ import annotations

import importlib.util

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from relaax_zmq.algorithms.common.spaces import ObservationSpec
from relaax_zmq.config import parse_config
from relaax_zmq.config.fitting import (
    algorithm_preset,
    env_spaces,
    fit_spaces,
    fitted_app,
    preset_for,
    register_optional_envs,
)
from relaax_zmq.envs.spaces import observation_converter
from relaax_zmq.errors import ConfigError
from relaax_zmq.presets import presets_dir
from relaax_zmq.ps.plugin import load_spec


class SwitchesEnv(gymnasium.Env):
    """Four on/off switches seen as a MultiBinary observation; two actions."""

    observation_space = spaces.MultiBinary(4)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN201
        super().reset(seed=seed)
        return np.array([1, 0, 1, 0], np.int8), {}

    def step(self, action):  # noqa: ANN001, ANN201
        return np.array([0, 1, 0, 1], np.int8), 1.0, True, False, {}


gymnasium.register(id="RelaaxTestSwitches-v0", entry_point=SwitchesEnv)


def checked(app: dict) -> None:
    """The app loads and its algorithm takes its config (raises otherwise)."""
    config = parse_config(app, "<fitted>")
    assert load_spec(config).param_count > 0


def test_box_observations_keep_their_shape_and_box_actions_their_bounds() -> None:
    inputs, outputs = fit_spaces(*env_spaces("Pendulum-v1"))
    assert inputs == {"shape": [3]}
    assert outputs == {"low": [-2.0], "high": [2.0]}


def test_discrete_observations_are_one_hot() -> None:
    inputs, outputs = fit_spaces(*env_spaces("FrozenLake-v1"))
    assert (inputs, outputs) == ({"shape": [16]}, {"actions": 4})
    app = fitted_app("ppo", "FrozenLake-v1")
    assert app["environment"] == {
        "run": "gym",
        "name": "FrozenLake-v1",
        "clients": 8,
        "vectorized": True,
    }
    assert app["algorithm"]["config"]["input"] == {"shape": [16]}
    checked(app)


def test_multibinary_observations_travel_as_the_input_section_says() -> None:
    obs_space, act_space = env_spaces("RelaaxTestSwitches-v0")
    inputs, outputs = fit_spaces(obs_space, act_space)
    assert (inputs, outputs) == ({"shape": [4]}, {"actions": 2})
    app = fitted_app("reinforce", "RelaaxTestSwitches-v0")
    checked(app)
    spec = ObservationSpec(tuple(inputs["shape"]), inputs.get("dtype", "float32"))
    convert = observation_converter(obs_space)
    states = np.stack([convert(np.array([1, 0, 1, 1], np.int8))])
    spec.check(states)  # the shape and dtype clients send are what the algorithm takes
    np.testing.assert_array_equal(states, np.float32([[1, 0, 1, 1]]))


def test_images_are_uint8_and_other_spaces_flatten() -> None:
    image = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    assert fit_spaces(image, spaces.Discrete(3))[0] == {"shape": [8, 8, 3], "dtype": "uint8"}
    nested = spaces.Tuple([spaces.Discrete(2), spaces.Box(0, 1, (3,))])
    assert fit_spaces(nested, spaces.Discrete(3))[0] == {"shape": [5]}


def test_unsupported_action_spaces_are_named() -> None:
    with pytest.raises(ConfigError, match=r"expected a Discrete or Box action space, got Multi"):
        fit_spaces(spaces.Box(-1, 1, (2,)), spaces.MultiBinary(3))
    with pytest.raises(ConfigError, match="finite bounds"):
        fit_spaces(spaces.Box(-1, 1, (2,)), spaces.Box(-np.inf, np.inf, (2,)))


def test_an_unknown_id_is_named() -> None:
    with pytest.raises(ConfigError, match="'NoSuchEnv-v9'"):
        env_spaces("NoSuchEnv-v9")


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py not installed")
def test_atari_ids_work_after_registration() -> None:
    register_optional_envs()
    register_optional_envs()  # idempotent
    inputs, outputs = fit_spaces(*env_spaces("ALE/Pong-v5"))
    assert inputs == {"shape": [210, 160, 3], "dtype": "uint8"}
    assert outputs == {"actions": 6}


def test_a_matching_preset_is_used_as_it_is() -> None:
    preset = preset_for("ppo", "CartPole-v1")
    assert preset is not None and preset["environment"]["name"] == "CartPole-v1"
    assert fitted_app("ppo", "CartPole-v1") == preset
    assert preset_for("ppo", "FrozenLake-v1") is None
    with pytest.raises(ConfigError, match="no bundled preset uses algorithm 'nope'"):
        algorithm_preset("nope")


def test_a_fitted_app_keeps_the_first_presets_hyperparameters() -> None:
    base = algorithm_preset("dqn")  # CartPole first
    assert base["environment"]["name"] == "CartPole-v1"
    app = fitted_app("dqn", "Acrobot-v1")
    config = app["algorithm"]["config"]
    assert config["input"] == {"shape": [6]} and config["output"] == {"actions": 3}
    rest = {k: v for k, v in config.items() if k not in ("input", "output")}
    assert rest == {
        k: v for k, v in base["algorithm"]["config"].items() if k not in ("input", "output")
    }
    checked(app)
    assert (presets_dir() / "cartpole-dqn.yaml").is_file()


def test_known_spaces_fit_an_app_without_making_the_environment() -> None:
    known = (spaces.Box(-1, 1, (5,), np.float32), spaces.Discrete(3))
    app = fitted_app("reinforce", "NotRegistered-v0", known)
    assert app["algorithm"]["config"]["input"] == {"shape": [5]}
    assert app["algorithm"]["config"]["output"] == {"actions": 3}
    assert app["environment"]["name"] == "NotRegistered-v0"
