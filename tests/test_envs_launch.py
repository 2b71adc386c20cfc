"""``python -m relaax_zmq.envs``: sessions from the app config, against a fake RLX server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import yaml
from fake_server import FakeServer

import relaax_zmq.envs.template
from relaax_zmq.envs.launch import main
from relaax_zmq.protocol import ErrorCode, MessageType, Role, messages

CUSTOM_ENV = '''
import gymnasium
import numpy as np


class Coin(gymnasium.Env):
    """One step per episode: reward 1 for action 1."""

    def __init__(self, bias=0.0):
        self.observation_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.bias = bias

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full(2, self.bias, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), float(action == 1), True, False, {}
'''


def app(tmp_path: Path, server: FakeServer, **environment: object) -> Path:
    data = {
        "algorithm": {"name": "reinforce"},
        "log_level": "WARNING",
        "broker": {"frontend": server.endpoint, "client_request_timeout": 2.0},
        "environment": environment,
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_threads_run_every_session_with_its_seed(tmp_path, server, capsys) -> None:
    config = app(tmp_path, server, run="bandit", clients=2, seed=7, max_episodes=2)
    argv = ["--config", str(config), "--threads", "--set", "environment.max_episode_steps=5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "session 0: 2 episodes" in out and "session 1: 2 episodes" in out
    inits = server.messages(MessageType.INIT)
    assert len(inits) == 2 and all(m.session_count == 1 for m in inits)
    assert len(set(server.identities(MessageType.INIT))) == 2
    assert len(server.messages(MessageType.UPDATE)) == 2 * 2 * 6


def test_vectorized_gym_is_one_block(tmp_path, server, capsys) -> None:
    config = app(
        tmp_path, server, run="gym", name="CartPole-v1", clients=3, vectorized=True,
        max_episodes=1, seed=0,
    )  # fmt: skip
    assert main(["--config", str(config)]) == 0
    assert "block 0 (sessions 0..2): 3 episodes" in capsys.readouterr().out
    (init,) = server.messages(MessageType.INIT)
    assert init.session_count == 3
    assert all(u.session_count == 3 for u in server.messages(MessageType.UPDATE))


def test_vectorized_blocks_split_the_sessions_and_keep_their_seeds(
    tmp_path, server, capsys
) -> None:
    config = app(
        tmp_path, server, run="gym", name="CartPole-v1", clients=5, vectorized=True, blocks=2,
        max_episodes=1, seed=0,
    )  # fmt: skip
    assert main(["--config", str(config), "--threads"]) == 0
    out = capsys.readouterr().out
    assert "block 0 (sessions 0..2): 3 episodes" in out
    assert "block 1 (sessions 3..4): 2 episodes" in out
    inits = server.messages(MessageType.INIT)
    assert sorted(m.session_count for m in inits) == [2, 3]
    assert len(set(server.identities(MessageType.INIT))) == 2
    firsts: dict[bytes, np.ndarray] = {}
    for identity, update in zip(
        server.identities(MessageType.UPDATE), server.messages(MessageType.UPDATE), strict=True
    ):
        firsts.setdefault(identity, update.tensors[Role.STATE])
    states = np.concatenate(sorted(firsts.values(), key=len, reverse=True))
    seeded = [gymnasium.make("CartPole-v1").reset(seed=i)[0] for i in range(5)]
    np.testing.assert_allclose(states, np.stack(seeded), rtol=1e-6)


def test_custom_runner_from_a_file(tmp_path, server, capsys) -> None:
    server.action_fn = lambda m: np.ones(m.session_count, np.int64)
    template = Path(relaax_zmq.envs.template.__file__)
    config = app(
        tmp_path, server, run=f"{template}:WalkRunner", env_kwargs={"size": 2}, max_episodes=2
    )
    assert main(["--config", str(config)]) == 0
    assert "session 0: 2 episodes, mean reward 0.8" in capsys.readouterr().out


def test_custom_gymnasium_env_vectorized(tmp_path, server, capsys) -> None:
    server.action_fn = lambda m: np.ones(m.session_count, np.int64)
    (tmp_path / "coin.py").write_text(CUSTOM_ENV)
    config = app(
        tmp_path, server, run="coin.py:Coin", env_kwargs={"bias": 0.5}, clients=2,
        vectorized=True, max_episodes=3,
    )  # fmt: skip
    assert main(["--config", str(config)]) == 0
    assert "block 0 (sessions 0..1): 6 episodes, mean reward 1" in capsys.readouterr().out
    first = server.messages(MessageType.UPDATE)[0]
    np.testing.assert_array_equal(first.tensors[Role.STATE], np.full((2, 2), 0.5, np.float32))


def test_bad_setups_exit_2(tmp_path, server, capsys) -> None:
    template = Path(relaax_zmq.envs.template.__file__)
    vector = app(tmp_path, server, run=f"{template}:WalkRunner", clients=2, vectorized=True)
    assert main(["--config", str(vector)]) == 2
    assert "needs a gymnasium.Env class" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["--config", str(vector), "--index", "5"]) == 2
    assert main(["--config", str(vector), "--block", "1"]) == 2
    assert "--block must be in 0..0" in capsys.readouterr().err
    assert server.messages() == []


def test_a_failed_session_exits_1(tmp_path, server, capsys) -> None:
    server.handler = lambda i, m: messages.error(ErrorCode.AUTH, "who are you")
    config = app(tmp_path, server, run="bandit", max_episodes=1)
    assert main(["--config", str(config)]) == 1
    assert "session 0: failed" in capsys.readouterr().out


def run_module(config: Path) -> subprocess.CompletedProcess[str]:
    """``python -m relaax_zmq.envs --config CONFIG`` to its end; it must exit 0."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "relaax_zmq.envs", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_module_entry_point_spawns_one_process_per_session(tmp_path, server) -> None:
    config = app(tmp_path, server, run="bandit", clients=2, max_episodes=1, max_episode_steps=3)
    done = run_module(config)
    assert "session 0: 1 episodes" in done.stdout and "session 1: 1 episodes" in done.stdout
    assert len(set(server.identities(MessageType.INIT))) == 2


def test_module_entry_point_spawns_one_process_per_block(tmp_path, server) -> None:
    config = app(
        tmp_path, server, run="gym", name="CartPole-v1", clients=4, vectorized=True, blocks=2,
        max_episodes=1, seed=0,
    )  # fmt: skip
    done = run_module(config)
    assert "block 0 (sessions 0..1): 2 episodes" in done.stdout
    assert "block 1 (sessions 2..3): 2 episodes" in done.stdout
    inits = server.messages(MessageType.INIT)
    assert [m.session_count for m in inits] == [2, 2]
    assert len(set(server.identities(MessageType.INIT))) == 2
