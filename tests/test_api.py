"""The Python API as users call it: learn, Policy (load, predict, save), evaluate, callbacks.

Runs are short (a few thousand steps): what is checked is what a run returns and
leaves behind, that a saved policy acts exactly as the trained one (observation
statistics included), and that every kind of environment is stepped correctly.
Learning to a target is in the README test and the slow suite.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import relaax_zmq
from relaax_zmq.api import EvalCallback, Policy, PolicyError, evaluate, learn
from relaax_zmq.cli.events import read_scalars
from relaax_zmq.client.metrics import MetricsBuffer
from relaax_zmq.envs.vector_env_runner import VectorEnvRunner, vector_env_runner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.errors import ConfigError

pytestmark = pytest.mark.timeout(180)


def test_learn_serial_returns_the_run_its_files_and_a_policy(tmp_path):
    run = learn(
        "CartPole-v1", "ppo", total_steps=3000, seed=0, mode="serial", run_dir=tmp_path / "r"
    )
    assert run.mode == "serial" and run.steps >= 3000 and run.episodes > 10
    assert run.stopped == "3,000 steps done" and not run.target_reached
    assert run.app_file.read_text().startswith("# relaax-zmq app: ppo on CartPole-v1")
    assert run.policy_file == tmp_path / "r" / "policy.h5" and run.policy_file.is_file()
    rewards = read_scalars(run.metrics_dir, {"client/episode_reward"})["client/episode_reward"]
    assert len(rewards) >= 1  # serial runs write TensorBoard like the collector
    loaded = Policy.load(run.run_dir)
    batch = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    assert np.array_equal(loaded.predict(batch)[0], run.policy.predict(batch)[0])
    action, state = loaded.predict(batch[0])
    assert np.ndim(action) == 0 and state is None


def test_observation_statistics_travel_with_the_policy(tmp_path):
    run = learn(
        "CartPole-v1",
        "ppo",
        total_steps=2000,
        seed=1,
        mode="serial",
        config={"input.normalize": True},
        run_dir=tmp_path / "r",
    )
    policy = run.policy
    assert policy.statistics is not None and policy.module.normalize
    copy = Policy.load(policy.save(tmp_path / "copy.h5"))
    assert np.array_equal(copy.statistics, policy.statistics)
    obs = np.random.default_rng(1).normal(scale=3.0, size=(256, 4)).astype(np.float32)
    assert np.array_equal(copy.predict(obs)[0], policy.predict(obs)[0])
    # negative control: the statistics matter (shifted ones change some actions) ...
    shifted = policy.statistics.copy()
    shifted[1 : 1 + 4] += 50.0 * shifted[0]
    other = Policy(policy.config, policy.params, shifted)
    assert not np.array_equal(other.predict(obs)[0], policy.predict(obs)[0])
    # ... and a normalising policy without them is refused, not silently wrong
    with pytest.raises(PolicyError, match="no observation statistics"):
        Policy(policy.config, policy.params, None)


def test_a_callback_sees_progress_and_stops_the_run(tmp_path):
    seen = []

    def stop_early(progress):
        seen.append(progress)
        return progress.steps < 1500

    run = learn(
        "CartPole-v1",
        "ppo",
        total_steps=50_000,
        mode="serial",
        run_dir=tmp_path / "r",
        callbacks=stop_early,
        progress_interval=0.0,
    )
    assert run.stopped == "stopped by stop_early" and run.steps < 5000
    assert seen[-1].final and seen[0].steps <= seen[-1].steps
    assert any(p.losses for p in seen)  # the agent's figures (serial mode)
    assert seen[-1].policy() is not None


def test_eval_callback_keeps_the_best_policy_by_evaluation(tmp_path):
    evaluations = EvalCallback("CartPole-v1", every_steps=1000, episodes=2)
    run = learn(
        "CartPole-v1",
        "ppo",
        total_steps=3000,
        mode="serial",
        run_dir=tmp_path / "r",
        callbacks=[evaluations],
        progress_interval=0.0,
    )
    assert len(evaluations.history) >= 2
    best = max(result.mean for _, result in evaluations.history)
    assert evaluations.best_mean == best
    saved = Policy.load(tmp_path / "r" / "best-policy.h5")
    assert evaluate(saved, "CartPole-v1", 2, seed=12345).mean == best
    assert run.steps >= 3000


def test_learn_from_a_factory_and_a_vector_env_with_discrete_observations(tmp_path):
    run = learn(
        lambda: gymnasium.make("FrozenLake-v1"),
        "ppo",
        total_steps=600,
        mode="serial",
        run_dir=tmp_path / "factory",
    )
    assert run.policy.module.input_shape == (16,)
    action, _ = run.policy.predict(3)  # a Discrete observation, as the environment gives it
    assert action in range(4)
    vector = gymnasium.make_vec("CartPole-v1", num_envs=4)
    run = learn(vector, "ppo", total_steps=1000, mode="serial", run_dir=tmp_path / "vector")
    assert run.steps >= 1000 and run.episodes > 0


class _ScriptedBlock:
    """A block of n sessions acting by a fixed rule (a proxy's surface)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.metrics = MetricsBuffer(lambda scalars, histograms: None)
        self.calls = 0

    def init(self, exploit: bool = False) -> int:
        return 1

    def update(self, rewards, states, terminal, truncated):
        self.calls += 1
        return (np.asarray(states)[:, 2] > 0).astype(np.int64)  # lean right when tilted right

    def disconnect(self) -> None:
        pass


def _episodes(runner, episodes: int = 3) -> list[list[float]]:
    runner.run(max_episodes=episodes)
    return runner.episodes


def test_a_vector_env_is_stepped_exactly_as_single_environments():
    n = 3
    single = _episodes(
        VectorRunner(_ScriptedBlock(n), [gymnasium.make("CartPole-v1") for _ in range(n)], seed=7)
    )
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED):
        env = gymnasium.make_vec(
            "CartPole-v1", n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}
        )
        runner = vector_env_runner(_ScriptedBlock(n), env, seed=7)
        assert _episodes(runner) == single, mode
    native = gymnasium.make_vec("CartPole-v1", num_envs=n)  # gymnasium's own CartPole VectorEnv
    assert isinstance(vector_env_runner(_ScriptedBlock(n), native, seed=7), VectorEnvRunner)
    # negative control: other seeds give other episodes
    other = gymnasium.make_vec("CartPole-v1", n, vectorization_mode="sync")
    assert _episodes(vector_env_runner(_ScriptedBlock(n), other, seed=8)) != single


def test_an_async_vector_env_in_same_step_mode_is_refused_with_the_way_out():
    env = gymnasium.make_vec(
        "CartPole-v1",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )
    try:
        with pytest.raises(ValueError, match="autoreset_mode=NEXT_STEP"):
            vector_env_runner(_ScriptedBlock(2), env)
    finally:
        env.close()


def test_bad_input_gets_errors_that_name_the_key(tmp_path):
    with pytest.raises(
        ConfigError, match=r"algorithm.config.rollout_lenght: unknown key .*rollout_length"
    ):
        learn("CartPole-v1", "ppo", config={"rollout_lenght": 3}, run_dir=tmp_path / "a")
    assert not (tmp_path / "a").exists()  # refused before anything was made
    with pytest.raises(ConfigError, match=r"workers.cuont: unknown key"):
        learn("CartPole-v1", "ppo", config={"workers": {"cuont": 2}}, run_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="NoSuchEnv-v0"):
        learn("NoSuchEnv-v0", "ppo")
    with pytest.raises(ConfigError, match="expected serial, local or a running app"):
        learn("CartPole-v1", "ppo", mode="nowhere", total_steps=10)
    with pytest.raises(PolicyError, match="expected observations of shape"):
        Policy.load(
            learn("CartPole-v1", "ppo", total_steps=200, run_dir=tmp_path / "c").policy_file
        ).predict(np.zeros((2, 5)))
    with pytest.raises(PolicyError, match="nothing is there"):
        Policy.load(tmp_path / "missing.h5")


def test_learn_through_the_local_daemons_checkpoints_and_loads_the_policy(tmp_path):
    run = learn(
        "CartPole-v1", "da3c", total_steps=4000, seed=0, mode="local", run_dir=tmp_path / "r"
    )
    assert run.mode == "local" and run.steps >= 4000
    assert list(run.checkpoint_dir.glob("ckpt-*.h5"))  # the shards' final checkpoint
    assert (tmp_path / "r" / "logs").is_dir() and run.policy_file.is_file()
    from_checkpoints = Policy.load(run.checkpoint_dir)  # a checkpoint folder (app beside it)
    obs = np.random.default_rng(2).normal(size=(32, 4)).astype(np.float32)
    assert np.array_equal(from_checkpoints.predict(obs)[0], run.policy.predict(obs)[0])
    result = evaluate(run.policy, "CartPole-v1", episodes=3, seed=0)
    assert len(result.returns) == 3 and result.mean == pytest.approx(np.mean(result.returns))


def test_the_api_is_served_from_the_package_lazily():
    assert relaax_zmq.learn is learn and relaax_zmq.Policy is Policy
    with pytest.raises(AttributeError, match="no attribute 'lern'"):
        relaax_zmq.lern  # noqa: B018


def test_a_serial_run_sends_its_tensorboard_scalars_to_mlflow(tmp_path):
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = learn(
        "CartPole-v1",
        "ppo",
        total_steps=1500,
        mode="serial",
        run_dir=tmp_path / "r",
        config={"metrics.mlflow": {"tracking_uri": uri, "experiment": "api"}},
    )
    tag = "client/episode_reward"
    board = sorted((p.step, p.value) for p in read_scalars(run.metrics_dir, {tag})[tag])
    client = tracking.MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("api").experiment_id])
    history = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, tag))
    assert board and [s for s, _ in history] == [s for s, _ in board]
    assert np.allclose([v for _, v in history], [v for _, v in board], rtol=1e-6)  # TB: float32


def test_a_recurrent_policy_carries_its_state_and_restarts_it(tmp_path):
    run = learn(
        "CartPole-v1",
        "da3c",
        total_steps=800,
        mode="serial",
        config={"lstm_size": 16, "shared_torso": True},
        run_dir=tmp_path / "r",
    )
    policy = Policy.load(run.policy_file)
    assert policy.recurrent
    obs = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    _, first = policy.predict(obs)
    assert first[0].shape == (5, 16) and np.abs(first[0]).sum() > 0
    _, carried = policy.predict(obs, state=first)
    assert not np.allclose(carried[0], first[0])  # the state moves on ...
    _, restarted = policy.predict(obs, state=first, episode_start=[True] * 5)
    assert np.allclose(restarted[0], first[0])  # ... and episode_start zeroes it
    assert evaluate(policy, "CartPole-v1", episodes=2).lengths[0] > 0


class _Pixels(gymnasium.Env):
    """A tiny image environment: which half of a uint8 frame is lit."""

    observation_space = gymnasium.spaces.Box(0, 255, (40, 40, 1), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.side, self.t = int(self.np_random.integers(2)), 0
        return self._frame(), {}

    def _frame(self):
        frame = np.zeros((40, 40, 1), np.uint8)
        frame[:, 6 * self.side : 6 * self.side + 6] = 255
        return frame

    def step(self, action):
        reward = float(action == self.side)
        self.side, self.t = int(self.np_random.integers(2)), self.t + 1
        return self._frame(), reward, False, self.t >= 20, {}


def test_learn_fits_an_image_environment_and_predicts_on_uint8_frames(tmp_path):
    run = learn(_Pixels, "ppo", total_steps=600, mode="serial", run_dir=tmp_path / "r")
    assert run.policy.module.input_shape == (40, 40, 1) and run.policy.module.input_dtype == "uint8"
    frames = np.stack([_Pixels().reset(seed=i)[0] for i in range(3)])
    actions, _ = run.policy.predict(frames)
    assert actions.shape == (3,) and set(actions.tolist()) <= {0, 1}


def test_learn_connects_to_a_running_app(tmp_path):
    from relaax_zmq.runtime.local import LocalStack

    first = learn("CartPole-v1", "da3c", total_steps=1000, mode="local", run_dir=tmp_path / "r")
    with LocalStack(first.app_file, log_dir=tmp_path / "logs"):  # the app's servers, running
        run = learn("CartPole-v1", total_steps=2000, mode=first.run_dir)
    assert run.mode == f"connected to {first.app_file}" and run.steps >= 2000
    assert run.global_step > first.global_step  # the same shards learned on
    assert run.policy is not None and run.policy_file is None  # its newest checkpoint
