"""Progress displays (relaax_zmq.runtime.progress): the rate, and each mode as users see it."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest

from relaax_zmq.runtime.progress import (
    JSON_KEYS,
    LiveDisplay,
    PlainDisplay,
    ProgressState,
    RateMeter,
    open_display,
)

pytestmark = pytest.mark.timeout(120)

UNKNOWN = -math.inf


def state(elapsed: float, steps: int, **more: object) -> ProgressState:
    figures: dict = {"episodes": 3, "mean_reward": 9.5, "global_step": 7, "checkpoints": 1}
    return ProgressState(elapsed, steps, **{**figures, **more})


def train_serial(*options: str) -> subprocess.CompletedProcess:
    """``python -m relaax_zmq.runtime.train --serial`` on the bandit app, as a user types it."""
    argv = ["--config", "conf/bandit-reinforce.yaml", "--serial", "--time-limit", "2", *options]
    return subprocess.run(
        [sys.executable, "-m", "relaax_zmq.runtime.train", *argv],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_rate_counts_steps_between_samples_not_since_the_start() -> None:
    meter = RateMeter(window=10.0, min_span=1.0)
    # steps counted before the clock started: no rate from one sample or a short span
    assert meter.add(0.0, 15_584) is None
    assert meter.add(0.5, 16_084) is None
    assert meter.add(1.0, 16_584) == pytest.approx(1_000.0)
    # the window forgets old samples: the rate follows a slowdown
    for t in range(2, 30):
        meter.add(float(t), 16_584 + 1_000 + (t - 1) * 100)
    assert meter.rate == pytest.approx(100.0)
    # a counter that goes back (a restarted client) never gives a negative rate
    meter.add(31.0, 0)
    assert meter.rate == 0.0


def test_json_lines_of_a_serial_run_parse_with_a_sane_first_rate() -> None:
    done = train_serial("--progress", "json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]  # JSON only on stdout
    progress, end = records[:-1], records[-1]
    assert progress and all(r["event"] == "progress" for r in progress)
    assert all(list(r)[1:] == list(JSON_KEYS) for r in progress)
    first, last = progress[0], progress[-1]
    assert first["steps_per_s"] is None  # not steps / ~0 s
    assert first["mean_reward"] is None or isinstance(first["mean_reward"], float)
    assert last["steps"] > first["steps"] and last["elapsed_s"] >= 2.0
    # the rate measures the steps between samples: at most what the run can have done
    assert 0 < last["steps_per_s"] <= (last["steps"] - first["steps"]) / (
        last["elapsed_s"] - first["elapsed_s"]
    ) * 1.01
    assert end["event"] == "end" and end["reason"].startswith("time limit")
    assert "serial mode" in done.stderr and "stopped: time limit" in done.stderr


def test_plain_lines_off_a_terminal_have_no_terminal_codes() -> None:
    done = train_serial()  # --progress auto, stdout a pipe
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert lines and "(-/s)" in lines[0] and "mean reward" in lines[-1]
    assert "(-/s)" not in lines[-1]

    stream = io.StringIO()
    display = open_display("auto", stream=stream)
    assert isinstance(display, PlainDisplay)
    display.update(state(0.0, 15_584))
    display.update(state(1.5, 16_584))  # within the interval: not shown yet ...
    display.close("done")  # ... but the last state always is
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[     0 s] steps 15,584 (-/s)")
    assert "steps 16,584 (667/s)" in lines[1] and len(lines) == 2


def test_the_live_line_renders_with_a_bar_and_an_eta_in_a_terminal() -> None:
    stream = io.StringIO()
    display = open_display("live", stream=stream, total_steps=10_000)
    assert isinstance(display, LiveDisplay)
    display.update(state(0.0, 1_000, mean_reward=UNKNOWN))
    display.update(state(2.0, 3_000))
    display.note("warning: a worker restarted")
    display.close("target reward reached")
    out = stream.getvalue()
    assert "\x1b[" in out and "━" in out  # colours and the bar: rendered for a terminal
    assert "steps 3,000/10,000" in out and "1,000/s" in out and "reward" in out
    assert "ETA 7s" in out  # 7,000 steps left at 1,000/s
    assert "warning: a worker restarted" in out
    assert out.endswith("\x1b[?25h")  # the cursor is back after close


def test_json_display_ends_with_the_reason_and_unknowns_as_null() -> None:
    stream, notes = io.StringIO(), io.StringIO()
    display = open_display("json", stream=stream, total_steps=100)
    display.notes = notes
    display.update(state(0.0, 10, mean_reward=UNKNOWN))
    display.note("where the files are")
    display.close("interrupted")
    first, end = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["mean_reward"] is None and first["eta_s"] is None
    assert first["total_steps"] == 100
    assert end["event"] == "end" and end["reason"] == "interrupted"
    assert notes.getvalue() == "where the files are\n"
    with pytest.raises(ValueError, match="progress mode"):
        open_display("fancy")
