"""Learning curves over environment steps and seconds (plot) and ranked runs (compare).

Runs are real TensorBoard folders written with the collector's own ``EventWriter``;
the commands run as a user types them.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import gymnasium
import pytest
from fake_server import FakeServer
from test_cli_support import cli, new_bandit_app

from relaax_zmq.cli.curves import load_runs
from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.envs.gym_runner import GymRunner
from relaax_zmq.envs.vector_runner import VectorRunner
from relaax_zmq.metrics.events import EventWriter, scalar_value
from relaax_zmq.protocol import MessageType, messages

pytestmark = pytest.mark.timeout(120)

OPTIONS = {"request_timeout": 2.0, "retry_deadline": 2.0}


def write_run(
    logdir: Path,
    episodes: list[tuple[float, float, int]],
    *,
    counts: str = "client/env_steps",
) -> None:
    """A run as the collector writes it: a first event now, then per episode (seconds
    after the start, reward, env steps since the last one) one batch holding
    ``client/episode_reward`` and the step count under ``counts`` (none when empty)."""
    start = time.time()
    writer = EventWriter(logdir)
    writer.write(0, start, [])
    for n, (seconds, reward, steps) in enumerate(episodes):
        values = [scalar_value("client/episode_reward", reward)]
        if counts:
            values.append(scalar_value(counts, steps))
        writer.write(n, start + seconds, values)
    writer.close()


def sent_metrics(server: FakeServer) -> list[dict[str, float]]:
    return [messages.read_metrics(m)[0] for m in server.messages(MessageType.METRICS)]


def test_clients_send_their_environment_steps_with_the_episode_rewards(
    server: FakeServer,
) -> None:
    runner = VectorRunner.make(
        VectorAgentProxy(server.endpoint, 3, **OPTIONS),
        lambda: gymnasium.make("CartPole-v1"),
        seed=1,
    )
    runner.run(max_episodes=2)
    sent = sent_metrics(server)
    rewards = [m for m in sent if "episode_reward" in m]
    assert rewards and all(m["env_steps"] >= 1 for m in rewards)
    # every step up to the last reported episode end, each counted once
    assert sum(m["env_steps"] for m in sent) <= runner.steps
    assert sum(m["env_steps"] for m in sent) >= sum(map(sum, runner.episodes))
    # and how many episodes each reward is the mean of: every reported episode once
    assert sum(m["episodes"] for m in rewards) == sum(map(len, runner.episodes)) == 6

    with FakeServer() as other:
        single = GymRunner(AgentProxy(other.endpoint, **OPTIONS), "CartPole-v1", seed=3)
        returns = single.run(max_episodes=3)
        # CartPole pays 1 per step: an episode's reward is its length
        assert [m["env_steps"] for m in sent_metrics(other)] == returns
        assert [m["episodes"] for m in sent_metrics(other)] == [1, 1, 1]


def test_plot_puts_runs_on_environment_steps_and_seconds(tmp_path) -> None:
    write_run(tmp_path / "runs" / "fast", [(10.0, 1.0, 100), (20.0, 3.0, 50), (30.0, 5.0, 50)])
    write_run(tmp_path / "runs" / "slow", [(5.0, 0.0, 10), (50.0, 2.0, 990)])
    out = tmp_path / "curves"
    done = cli("plot", tmp_path / "runs", "-o", out, "--smooth", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["x"] == "steps"  # the default
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(tmp_path / "curves.csv")))
    table = [
        (r["run"], int(r["episodes"]), int(r["env_steps"]), float(r["seconds"]), float(r["value"]))
        for r in rows
    ]
    assert table == [
        ("fast", 1, 100, 10.0, 1.0),
        ("fast", 2, 150, 20.0, 3.0),
        ("fast", 3, 200, 30.0, 5.0),
        ("slow", 1, 10, 5.0, 0.0),
        ("slow", 2, 1000, 50.0, 2.0),
    ]
    assert [float(r["smoothed"]) for r in rows] == [1.0, 2.0, 4.0, 0.0, 1.0]

    seconds = cli("plot", tmp_path / "runs", "-o", tmp_path / "s", "--x", "seconds")
    assert seconds.returncode == 0 and "over seconds" in seconds.stdout
    bad = cli("plot", tmp_path / "runs", "--x", "minutes")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_runs_without_step_counts_use_episode_lengths_or_fall_back_to_episodes(
    tmp_path,
) -> None:
    lengths = [(1.0, 1.0, 20), (2.0, 2.0, 30)]
    write_run(tmp_path / "lengths", lengths, counts="client/episode_length")
    write_run(tmp_path / "bare", [(1.0, 1.0, 0), (2.0, 2.0, 0)], counts="")
    lengths, bare = load_runs([tmp_path / "lengths", tmp_path / "bare"])
    assert lengths.total_steps == 50 and lengths.curve("client/episode_reward").steps == [20, 50]
    assert bare.total_steps is None and bare.curve("client/episode_reward").steps is None
    assert lengths.seconds == pytest.approx(2.0)

    done = cli("plot", tmp_path, "-o", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["x"] == "episodes"
    assert "bare report no environment steps" in done.stderr
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert [r["env_steps"] for r in rows if r["run"] == "bare"] == ["", ""]


def test_compare_ranks_by_time_to_the_threshold_then_best_mean(tmp_path) -> None:
    # quick: mean of 2 reaches 4 at 20 s; late: at 40 s; never: best mean 3.5 < 4
    write_run(tmp_path / "quick", [(10.0, 3.0, 100), (20.0, 5.0, 100), (30.0, 4.0, 100)])
    write_run(tmp_path / "late", [(10.0, 1.0, 10), (40.0, 9.0, 20)])
    write_run(tmp_path / "never", [(10.0, 3.0, 5), (20.0, 4.0, 5), (90.0, 3.0, 5)])
    done = cli("compare", tmp_path, "--window", "2", "--threshold", "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["window"] == 2 and report["threshold"] == 4.0
    rows = {r["run"]: r for r in report["runs"]}
    assert [r["run"] for r in report["runs"]] == ["quick", "late", "never"]
    quick, late, never = rows["quick"], rows["late"], rows["never"]
    assert quick["seconds_to_threshold"] == pytest.approx(20.0)
    assert quick["steps_to_threshold"] == 200 and quick["best_mean"] == 4.5
    assert quick["final_mean"] == 4.5 and quick["total_steps"] == 300
    assert late["seconds_to_threshold"] == pytest.approx(40.0) and late["steps_to_threshold"] == 30
    assert never["reached"] is False and never["steps_to_threshold"] is None
    assert never["best_mean"] == 3.5 and never["seconds"] == pytest.approx(90.0)

    text = cli("compare", tmp_path, "--window", "2", "--threshold", "4")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "steps to 4" in lines[0] and lines[1].split()[:2] == ["1", "quick"]
    assert lines[3].split()[1] == "never" and "not reached" in lines[3]
    # without a threshold: ranked by best mean
    best = json.loads(cli("compare", tmp_path, "--window", "2", "--json").stdout)
    assert [r["run"] for r in best["runs"]] == ["late", "quick", "never"]


def test_compare_and_plot_take_an_app_file_for_its_metrics_folder(tmp_path) -> None:
    logdir = tmp_path / "metrics" / "bandit"
    write_run(logdir, [(1.0, 1.0, 10), (2.0, 3.0, 10)])
    app = new_bandit_app(tmp_path / "app", metrics={"logdir": str(logdir)})
    done = cli("compare", app, "--window", "5", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["runs"]
    assert row["best_mean"] == 2.0 and row["total_steps"] == 20  # a short run: a short window
    missing = cli("compare", tmp_path / "nothing")
    assert missing.returncode == 1 and "no such run folder" in missing.stderr


def test_a_mean_of_several_episodes_weighs_as_many_in_compare_and_plot(tmp_path) -> None:
    # a vector client: 1 episode (reward 0), then 3 ending together (mean 10), then 1 (reward 4)
    start = time.time()
    writer = EventWriter(tmp_path / "vector")
    writer.write(0, start, [])
    for n, (seconds, reward, episodes) in enumerate([(1.0, 0.0, 1), (2.0, 10.0, 3), (3.0, 4.0, 1)]):
        values = [scalar_value("client/episode_reward", reward)]
        values += [scalar_value("client/env_steps", 50), scalar_value("client/episodes", episodes)]
        writer.write(n, start + seconds, values)
    writer.close()
    done = cli("compare", tmp_path / "vector", "--window", "4", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["runs"]
    assert row["episodes"] == 5
    assert row["final_mean"] == pytest.approx((10.0 * 3 + 4.0) / 4)  # the last 4 episodes
    assert row["best_mean"] == pytest.approx(8.5)  # not the mean of the last 2 values (7.0)
    out = tmp_path / "curve"
    plotted = cli("plot", tmp_path / "vector", "--x", "episodes", "--smooth", "4", "-o", out)
    assert plotted.returncode == 0, plotted.stderr
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["episodes"]) for r in rows] == [1, 4, 5]
    assert float(rows[1]["smoothed"]) == pytest.approx(7.5)  # (0 + 3 x 10) / 4
