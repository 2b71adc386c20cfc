"""Fitting an app to a gymnasium environment: its spaces, the algorithm's sections, a preset.

``fit_spaces`` turns an environment's observation and action spaces into the
``input`` and ``output`` sections of a built-in algorithm's config, following the
conversions clients make (``relaax_zmq.envs.spaces``). ``fitted_app`` is the whole
app mapping for training an algorithm on a gymnasium id: the bundled preset for
the pair when there is one, else the algorithm's first preset fitted to the
environment. Errors are ``ConfigError``; nothing here depends on the CLI.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from typing import Any

import gymnasium
import yaml
from gymnasium import spaces

from relaax_zmq.errors import ConfigError
from relaax_zmq.presets import preset_files

#: The ``environment`` section of an app fitted to a gymnasium id (``name`` added).
GYM_ENVIRONMENT: dict[str, Any] = {"run": "gym", "clients": 8, "vectorized": True}

_registered = False


def register_optional_envs() -> None:
    """Register the environments of installed optional packages (ale-py's ``ALE/...``).

    Idempotent; a missing package is skipped.
    """
    global _registered
    if _registered:
        return
    if importlib.util.find_spec("ale_py") is not None:
        import ale_py

        gymnasium.register_envs(ale_py)
    _registered = True


def env_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """(observation space, action space) of the gymnasium environment ``env_id``.

    Raises:
        ConfigError: ``env_id`` cannot be made (unknown id, a missing extra).
    """
    register_optional_envs()
    try:
        env = gymnasium.make(env_id)
    except gymnasium.error.Error as exc:
        hint = ""
        if env_id.startswith("ALE/") and importlib.util.find_spec("ale_py") is None:
            hint = " (Atari needs ale-py: pip install 'relaax-zmq[atari]')"
        raise ConfigError(
            "environment.name",
            f"cannot make the gymnasium environment {env_id!r}: {exc}{hint}",
        ) from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def fit_spaces(
    observation_space: spaces.Space, action_space: spaces.Space
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``input`` and ``output`` sections of an algorithm for these spaces.

    Observations: a ``Box`` keeps its shape (``dtype: uint8`` for images), a
    ``Discrete`` one is one-hot (shape ``[n]``), ``MultiBinary``/``MultiDiscrete``
    keep their shape, anything else is flattened. Actions: ``Discrete`` gives
    ``actions``, a bounded ``Box`` gives ``low`` and ``high``.

    Raises:
        ConfigError: an action space that is neither Discrete nor a bounded Box.
    """
    return _fit_observations(observation_space), _fit_actions(action_space)


def _fit_observations(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        inputs: dict[str, Any] = {"shape": [int(n) for n in space.shape]}
        if space.dtype == "uint8":
            inputs["dtype"] = "uint8"
        return inputs
    if isinstance(space, spaces.Discrete):
        return {"shape": [int(space.n)]}
    if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete)):
        return {"shape": [int(n) for n in space.shape]}
    try:
        return {"shape": [int(spaces.flatdim(space))]}
    except (NotImplementedError, ValueError) as exc:
        raise ConfigError(
            "algorithm.config.input",
            f"expected an observation space that flattens to a vector, got {space} ({exc})",
        ) from None


def _fit_actions(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"actions": int(space.n)}
    if isinstance(space, spaces.Box):
        low, high = space.low.reshape(-1).tolist(), space.high.reshape(-1).tolist()
        if not all(math.isfinite(v) for v in low + high):
            raise ConfigError(
                "algorithm.config.output",
                f"expected a Box action space with finite bounds, got {space}",
            )
        return {"low": low, "high": high}
    raise ConfigError(
        "algorithm.config.output",
        f"expected a Discrete or Box action space, got {space}",
    )


def _presets_of(algorithm: str) -> list[dict[str, Any]]:
    """The bundled presets of ``algorithm``, those on CartPole first."""
    found = []
    for path in sorted(preset_files(), key=lambda p: "cartpole" not in p.stem):
        data = yaml.safe_load(path.read_text()) or {}
        if (data.get("algorithm") or {}).get("name") == algorithm:
            found.append(data)
    return found


def preset_for(algorithm: str, env_id: str | None) -> dict[str, Any] | None:
    """The bundled preset training ``algorithm`` on ``env_id`` (its ``environment.name``).

    ``env_id`` None matches a preset without ``environment.name`` (a built-in runner).
    None when no preset matches.
    """
    for data in _presets_of(algorithm):
        if (data.get("environment") or {}).get("name") == env_id:
            return data
    return None


def algorithm_preset(algorithm: str, env_id: str | None = None) -> dict[str, Any]:
    """``preset_for(algorithm, env_id)``, else the algorithm's first preset (CartPole first).

    Raises:
        ConfigError: no bundled preset uses ``algorithm``.
    """
    presets = _presets_of(algorithm)
    if not presets:
        raise ConfigError("algorithm.name", f"no bundled preset uses algorithm {algorithm!r}")
    return preset_for(algorithm, env_id) or presets[0]


def fitted_app(
    algorithm: str,
    env_id: str,
    known_spaces: tuple[spaces.Space, spaces.Space] | None = None,
) -> dict[str, Any]:
    """The app mapping that trains ``algorithm`` on the gymnasium environment ``env_id``.

    The bundled preset for the pair as it is when there is one; otherwise the
    algorithm's first preset (hyperparameters, ``workers``, ``parameter_servers``)
    with ``input``/``output`` fitted to the environment's spaces (``known_spaces``
    when given, else made by ``env_spaces``) and the environment section
    ``GYM_ENVIRONMENT`` named ``env_id``.

    Raises:
        ConfigError: no preset uses ``algorithm``, ``env_id`` cannot be made or
            its spaces do not fit (``env_spaces``, ``fit_spaces``).
    """
    preset = preset_for(algorithm, env_id)
    if preset is not None:
        return copy.deepcopy(preset)
    base = algorithm_preset(algorithm)
    inputs, outputs = fit_spaces(*(known_spaces or env_spaces(env_id)))
    config = copy.deepcopy((base.get("algorithm") or {}).get("config") or {})
    config.update({"input": inputs, "output": outputs})
    return {
        "version": 1,
        "environment": {**GYM_ENVIRONMENT, "name": env_id},
        **{k: copy.deepcopy(v) for k, v in base.items() if k in ("workers", "parameter_servers")},
        "algorithm": {"name": algorithm, "config": config},
    }
