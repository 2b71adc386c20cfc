"""``Policy``: a trained policy to load, query and save, with no daemon running.

``Policy.load(path)`` reads a policy file (``policy.save``), a run or app folder or app
file (the newest complete checkpoint of its shards), a checkpoint folder (its app file
found beside it), or a file of ``relaax-zmq export`` (TorchScript or ONNX: deterministic
actions only). ``predict`` takes one observation or a batch as the environment gives
them and returns the environment's actions, numpy in and numpy out, with an LSTM's
state passed in and out. The observation normalisation statistics are part of the
policy and of its file, so a loaded policy sees what the trained one saw.

A policy file is one HDF5 file: the flat parameters, shard 0's statistics totals, the
effective app config as YAML text and the spaces' facts (``SpaceInfo``), written
atomically (a temporary file renamed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml

from relaax_zmq.api.networks import Memory, PolicyError, PolicyModule, policy_module
from relaax_zmq.api.spaces import SpaceInfo
from relaax_zmq.checkpoint.weights import assemble
from relaax_zmq.config import AppConfig, dump_config, load_config, parse_config
from relaax_zmq.errors import RelaaxError

#: The ``format`` attribute of a policy file, and its version.
FORMAT, VERSION = "relaax-zmq-policy", 1
#: The file a run folder keeps its final policy in (``relaax_zmq.learn``).
POLICY_FILE = "policy.h5"
#: State of a recurrent policy between ``predict`` calls: the LSTM's (h, c) as numpy.
State = tuple[np.ndarray, np.ndarray] | None


class Policy:
    """An app's policy with its weights (module docstring).

    Args:
        config: the app config that trained it (its ``algorithm`` section builds the net).
        params: the flat parameter vector.
        statistics: shard 0's observation statistics totals (when ``input.normalize``).
        step: the global step the weights are of.
        observation, action: the environment's spaces' facts (None: the network's own).
    """

    def __init__(
        self,
        config: AppConfig,
        params: np.ndarray,
        statistics: np.ndarray | None = None,
        *,
        step: int = 0,
        observation: SpaceInfo | None = None,
        action: SpaceInfo | None = None,
    ) -> None:
        self.config = config
        self.params = np.asarray(params, np.float32)
        self.statistics = None if statistics is None else np.asarray(statistics, np.float64)
        self.step = int(step)
        self.observation = observation
        self.action = action
        self.module: PolicyModule = policy_module(config, self.params, self.statistics)

    @property
    def algorithm(self) -> str:
        """The algorithm's name (or its folder for ``algorithm.path``)."""
        return str(self.config.algorithm.name or self.config.algorithm.path)

    @property
    def recurrent(self) -> bool:
        """``predict`` takes and returns an LSTM state."""
        return self.module.recurrent

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy | ExportedPolicy:
        """The policy at ``path`` (module docstring); PolicyError when there is none."""
        where = Path(path).expanduser()
        if where.is_dir():
            return _from_folder(where)
        if not where.is_file():
            raise PolicyError(
                f"{where}: expected a policy file, a run, app or checkpoint folder, an app file or an exported policy; nothing is there"
            )
        if where.suffix in (".yaml", ".yml"):
            return _from_app(load_config(where), where)
        if where.suffix in (".pt", ".onnx"):
            return ExportedPolicy(where)
        return _from_file(where)

    def predict(
        self,
        observation: Any,
        deterministic: bool = True,
        state: State = None,
        episode_start: Any = None,
    ) -> tuple[np.ndarray, State]:
        """(actions, next state) for one observation or a batch.

        ``deterministic=False`` samples from an actor-critic policy's distribution.
        A recurrent policy starts from zeros when ``state`` is None; ``episode_start``
        (bool per row) zeroes the state of rows that begin an episode.
        """
        batch, single = self._inputs(observation)
        with torch.no_grad():
            x = torch.from_numpy(batch)
            memory = self._memory(state, episode_start, len(batch))
            actions, memory = self.module.act(x, memory, deterministic)
        out = actions.numpy()
        if self.action is not None:
            out = self.action.actions(out)
        next_state = None if memory is None else (memory[0].numpy(), memory[1].numpy())
        return (out[0] if single else out), next_state

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the policy file (module docstring) to ``path``; the path."""
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        with h5py.File(temporary, "w") as file:
            file.attrs["format"], file.attrs["version"] = FORMAT, VERSION
            file.attrs["step"] = self.step
            file.attrs["algorithm"] = self.algorithm
            file.attrs["app"] = dump_config(self.config)
            file.attrs["app_dir"] = str(self.config.app_dir)
            for name, info in (("observation", self.observation), ("action", self.action)):
                file.attrs[name] = "null" if info is None else json.dumps(info.to_json())
            file.create_dataset("params", data=self.params)
            if self.statistics is not None:
                file.create_dataset("statistics", data=self.statistics)
        os.replace(temporary, target)
        return target

    def _inputs(self, observation: Any) -> tuple[np.ndarray, bool]:
        expected = self.module.input_shape
        if self.observation is not None:
            batch, single = self.observation.observations(observation)
        else:
            array = np.asarray(observation)
            single = array.shape == expected
            batch = array[None] if single else array
        if batch.shape[1:] != expected:
            raise PolicyError(
                f"expected observations of shape {expected} (or a batch of them), "
                f"got an array of shape {np.asarray(observation).shape}"
            )
        dtype = np.uint8 if self.module.input_dtype == "uint8" else np.float32
        return np.ascontiguousarray(batch, dtype=dtype), single

    def _memory(self, state: State, episode_start: Any, batch: int) -> Memory:
        if not self.recurrent:
            return None
        if state is None:
            return self.module.initial_memory(batch)
        h, c = (torch.as_tensor(np.asarray(s, np.float32)).clone() for s in state)
        if h.shape[0] != batch:
            raise PolicyError(f"expected a state for {batch} rows, got one for {h.shape[0]}")
        if episode_start is not None:
            keep = torch.as_tensor(~np.asarray(episode_start, bool).reshape(-1, 1), dtype=h.dtype)
            h, c = h * keep, c * keep
        return h, c

    def __repr__(self) -> str:
        return f"Policy({self.algorithm}, step {self.step:,}, {self.params.size:,} parameters)"


class ExportedPolicy:
    """A file of ``relaax-zmq export`` (TorchScript ``.pt`` or ONNX ``.onnx``): the
    deterministic action of a feed-forward policy, normalisation included."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.suffix == ".onnx":
            try:
                import onnxruntime
            except ImportError:
                raise PolicyError(
                    "an ONNX policy needs onnxruntime: pip install 'relaax-zmq[export]'"
                ) from None
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            entry = session.get_inputs()[0]
            self._shape = tuple(entry.shape[1:])
            self._dtype = np.uint8 if "uint8" in entry.type else np.float32
            self._run = lambda x: session.run(None, {entry.name: x})[0]
        else:
            module = torch.jit.load(str(path))
            self._shape, self._dtype = None, np.float32
            self._run = lambda x: module(torch.from_numpy(x)).numpy()

    recurrent = False

    def predict(
        self,
        observation: Any,
        deterministic: bool = True,
        state: State = None,
        episode_start: Any = None,
    ) -> tuple[np.ndarray, State]:
        """(actions, None) as ``Policy.predict``; only deterministic actions."""
        if not deterministic:
            raise PolicyError(
                f"{self.path.name} holds the deterministic policy only: expected deterministic=True"
            )
        array = np.asarray(observation)
        # TorchScript keeps no input shape: a vector is one observation
        single = array.shape == self._shape if self._shape is not None else array.ndim == 1
        batch = np.ascontiguousarray(array[None] if single else array, dtype=self._dtype)
        with torch.no_grad():
            out = np.asarray(self._run(batch))
        return (out[0] if single else out), None


def _from_file(path: Path) -> Policy:
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise PolicyError(f"{path}: expected a policy file (HDF5), cannot read it: {exc}") from None
    with file:
        if file.attrs.get("format") != FORMAT:
            raise PolicyError(
                f"{path}: expected a {FORMAT} file, got format {file.attrs.get('format')!r}"
            )
        if int(file.attrs["version"]) > VERSION:
            raise PolicyError(
                f"{path}: policy file version {int(file.attrs['version'])} is newer than this relaax-zmq reads ({VERSION})"
            )
        mapping = yaml.safe_load(str(file.attrs["app"]))
        config = parse_config(mapping, str(path), app_dir=str(file.attrs["app_dir"]))
        infos = [json.loads(str(file.attrs[name])) for name in ("observation", "action")]
        params = np.asarray(file["params"])
        statistics = np.asarray(file["statistics"]) if "statistics" in file else None
        step = int(file.attrs["step"])
    observation, action = (None if i is None else SpaceInfo.from_json(i) for i in infos)
    return Policy(config, params, statistics, step=step, observation=observation, action=action)


def _from_folder(folder: Path) -> Policy:
    app = folder / "app.yaml"
    if app.is_file():
        config = load_config(app)
        try:
            return _from_app(config, app)
        except RelaaxError as exc:
            if (folder / POLICY_FILE).is_file():  # a serial run keeps its policy, no checkpoints
                return _from_file(folder / POLICY_FILE)
            raise PolicyError(f"{folder}: {exc}") from None
    if (folder / POLICY_FILE).is_file():
        return _from_file(folder / POLICY_FILE)
    if any(folder.glob("ckpt-*.h5")):
        for candidate in (folder.parent / "app.yaml", folder.parent.parent / "app.yaml"):
            if candidate.is_file():
                config = load_config(candidate, {"parameter_servers.checkpoint.dir": str(folder)})
                return _from_app(config, candidate)
        raise PolicyError(
            f"{folder}: checkpoints without an app.yaml beside them (expected {folder.parent / 'app.yaml'})"
        )
    raise PolicyError(
        f"{folder}: expected an app.yaml, a {POLICY_FILE} or checkpoints (ckpt-*.h5), found none"
    )


def _from_app(config: AppConfig, where: Path) -> Policy:
    weights = assemble(config)
    observation, action = _env_spaces(config)
    return Policy(
        config,
        weights.params,
        weights.extras.get("statistics"),
        step=weights.step,
        observation=observation,
        action=action,
    )


def _env_spaces(config: AppConfig) -> tuple[SpaceInfo | None, SpaceInfo | None]:
    """The spaces of the app's gymnasium environment when it names one (None, None else)."""
    env = config.environment
    if env.run != "gym" or not env.name:
        return None, None
    from relaax_zmq.envs.launch import env_factory

    try:
        made = env_factory(config)()
    except Exception:
        return None, None
    try:
        return SpaceInfo.of(made.observation_space), SpaceInfo.of(made.action_space)
    finally:
        made.close()
