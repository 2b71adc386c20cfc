"""``BlockProcesses``: vectorised blocks as child processes, their progress over pipes."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
import yaml
from fake_server import FakeServer

from relaax_zmq.envs.block_processes import (
    BlockProcesses,
    ProgressReporter,
    parse_progress_line,
    progress_line,
)
from relaax_zmq.envs.launch import main
from relaax_zmq.protocol import MessageType


def cartpoles(tmp_path: Path, server: FakeServer, **environment: object) -> Path:
    data = {
        "algorithm": {"name": "reinforce"},
        "log_level": "WARNING",
        "broker": {"frontend": server.endpoint, "client_request_timeout": 5.0},
        "environment": {
            "run": "gym", "name": "CartPole-v1", "vectorized": True, "seed": 0, **environment
        },
    }  # fmt: skip
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_progress_lines_round_trip() -> None:
    line = progress_line(1234, 2, [21.0, -0.5, 1e-9])
    assert line.endswith("\n") and line.count("\n") == 1
    assert parse_progress_line(line) == (1234, 2, [21.0, -0.5, 1e-9])
    assert parse_progress_line(progress_line(0, 0, [])) == (0, 0, [])


@pytest.mark.parametrize("line", ["", "12", "12 x", "1.5 0", "3 0 nope", "-1 0 2.0"])
def test_a_bad_progress_line_is_refused_naming_what_came(line: str) -> None:
    with pytest.raises(ValueError, match="expected") as raised:
        parse_progress_line(line)
    assert repr(line) in str(raised.value)


def test_the_reporter_sends_each_reward_once_and_a_last_line_on_close() -> None:
    finished: list[float] = []
    state = {"steps": 0}
    stream = io.StringIO()
    reporter = ProgressReporter(lambda: (state["steps"], 0, finished), stream, period=0.01)
    finished += [10.0, 20.0]
    state["steps"] = 30
    time.sleep(0.1)
    finished.append(30.0)
    state["steps"] = 45
    reporter.close()
    lines = [parse_progress_line(line) for line in stream.getvalue().splitlines()]
    assert [r for _, _, rewards in lines for r in rewards] == [10.0, 20.0, 30.0]
    assert lines[-1][0] == 45
    assert [steps for steps, _, _ in lines] == sorted(steps for steps, _, _ in lines)


def test_blocks_run_as_processes_and_report_every_episode(tmp_path, server) -> None:
    config = cartpoles(tmp_path, server, clients=5, blocks=2)
    blocks = BlockProcesses(config, 2)
    finished = blocks.run(max_episodes=2)
    assert finished is blocks.finished and len(finished) == 5 * 2
    assert all(1.0 <= r <= 500.0 for r in finished)
    assert blocks.steps >= sum(finished)  # a reward of 1 per step; ended blocks keep stepping
    assert blocks.restarts == 0
    inits = server.messages(MessageType.INIT)
    assert sorted(m.session_count for m in inits) == [2, 3]
    assert len(set(server.identities(MessageType.INIT))) == 2


def test_stop_ends_every_child_and_keeps_what_they_reported(tmp_path, server) -> None:
    blocks = BlockProcesses(cartpoles(tmp_path, server, clients=4, blocks=2), 2)
    thread = threading.Thread(target=blocks.run)
    thread.start()
    deadline = time.monotonic() + 30
    while len(blocks.finished) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    blocks.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert len(blocks.finished) >= 8 and blocks.steps >= 8
    assert all(child.process.returncode is not None for child in blocks._children)


def test_a_failing_child_raises_naming_its_block(tmp_path, server) -> None:
    config = cartpoles(tmp_path, server, clients=2, blocks=2)
    blocks = BlockProcesses(config, 2, overrides=["environment.name=NoSuchEnv-v0"])
    with pytest.raises(RuntimeError, match=r"environment block \d of .* exited with status 2"):
        blocks.run()


def test_progress_fd_needs_one_vectorized_block(tmp_path, server, capsys) -> None:
    config = cartpoles(tmp_path, server, clients=4, blocks=2)
    read_fd, write_fd = os.pipe()
    try:
        assert main(["--config", str(config), "--progress-fd", str(write_fd)]) == 2
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert "--progress-fd needs one vectorized block" in capsys.readouterr().err
    assert server.messages() == []


def test_training_blocks_are_processes_only_when_there_are_several(tmp_path, server) -> None:
    from relaax_zmq.config import load_config
    from relaax_zmq.envs.launch import make_training_blocks
    from relaax_zmq.envs.vector_runner import VectorBlocks

    several = cartpoles(tmp_path, server, clients=4, blocks=2)
    blocks = make_training_blocks(load_config(several), several)
    assert isinstance(blocks, BlockProcesses) and blocks.blocks == 2
    one = tmp_path / "one.yaml"
    one.write_text(several.read_text().replace("blocks: 2", "blocks: 1"))
    single = make_training_blocks(load_config(one), one)
    assert isinstance(single, VectorBlocks) and len(single.runners) == 1
    single.stop()
    single.run()  # stopped before it started: returns without stepping
    assert single.steps == 0
