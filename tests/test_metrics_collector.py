"""The metrics collector: real ZeroMQ over loopback into real TensorBoard event files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.metrics import Collector, MetricsSender, SessionMetricsSink, encode_batch, names
from relaax_zmq.protocol import Message, MessageType, Role, encode, messages
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing.linear_policy.agent import LinearPolicyAgent
from relaax_zmq.worker.host import SessionHost

pytestmark = pytest.mark.timeout(60)


def app(tmp_path: Path, **metrics: Any) -> dict[str, Any]:
    return {
        "environment": {"run": "bandit"},
        "algorithm": {"name": "reinforce"},
        "metrics": {
            "endpoint": f"tcp://127.0.0.1:{free_port()}",
            "logdir": "tb",
            "flush_interval": 0.2,
            **metrics,
        },
    }


def make_config(tmp_path: Path, **metrics: Any) -> AppConfig:
    return parse_config(app(tmp_path, **metrics), app_dir=tmp_path)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@contextmanager
def running(config: AppConfig, **kwargs: Any) -> Iterator[Collector]:
    """A collector in a thread, stopped (flushed and closed) on exit."""
    collector = Collector(config, **kwargs)
    stop = StopFlag()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            collector.run(stop)
        except BaseException as exc:  # surfaced by the test below
            failures.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    # trackers start their runs before the collector is ready (seconds under load)
    deadline = time.monotonic() + 60
    while not collector.ready.wait(0.05) and thread.is_alive() and time.monotonic() < deadline:
        pass
    assert collector.ready.is_set(), failures
    try:
        yield collector
    finally:
        stop.set()
        thread.join(60)  # the trackers finish their runs on the way out
        assert not thread.is_alive() and not failures, failures


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_sender_to_collector_to_event_files(tmp_path):
    config = make_config(tmp_path)
    weights = np.linspace(-1.0, 3.0, 41)
    with running(config) as collector:
        with MetricsSender.from_config(config, "worker-0") as sender:
            for step in (10, 20, 30):
                sender.scalar(names.POLICY_LOSS, step / 10)
                sender.scalar(names.ENTROPY, -step)
                sender.histogram(names.ACTIONS, np.arange(step))
                sender.flush(step=step)
            sender.histogram("weights", weights, step=40)
            assert sender.flush() == 1
        with MetricsSender.from_config(config, "ps-1") as ps:
            ps.scalar(names.STALENESS, 2.0, step=5)
            ps.flush()
        wait_for(lambda: collector.counters.recorded == 5, "5 batches")
    assert collector.run_dir == tmp_path / "tb"
    assert list(collector.run_dir.glob("events.out.tfevents.*"))
    acc = events(collector.run_dir)
    assert set(acc.Tags()["scalars"]) == {"worker/policy_loss", "worker/entropy", "ps/staleness"}
    assert set(acc.Tags()["histograms"]) == {"worker/actions", "worker/weights"}
    assert scalars(acc, "worker/policy_loss") == [(10, 1.0), (20, 2.0), (30, 3.0)]
    assert scalars(acc, "worker/entropy") == [(10, -10.0), (20, -20.0), (30, -30.0)]
    assert scalars(acc, "ps/staleness") == [(5, 2.0)]
    actions = acc.Histograms("worker/actions")
    assert [h.step for h in actions] == [10, 20, 30]
    last = actions[-1].histogram_value
    assert (last.num, last.min, last.max, last.sum) == (30, 0, 29, 435)
    assert sum(last.bucket) == 30
    (w,) = acc.Histograms("worker/weights")
    assert w.step == 40 and w.histogram_value.num == 41
    assert (w.histogram_value.min, w.histogram_value.max) == (-1.0, 3.0)
    assert w.histogram_value.sum == pytest.approx(weights.sum())
    assert collector.stats()["scalars"] == 7 and collector.stats()["histograms"] == 4


def test_collector_filters_by_name_and_by_tag(tmp_path):
    config = make_config(
        tmp_path,
        enabled=["loss", "worker/entropy", "hist"],
        disabled=["client/loss"],
    )
    with running(config) as collector:
        with MetricsSender.from_config(config, "worker-0", enabled=None, disabled=()) as sender:
            sender.scalar("loss", 1.0)
            sender.scalar("entropy", 2.0)
            sender.scalar("other", 3.0)
            sender.histogram("hist", [1.0, 2.0])
            sender.histogram("other_hist", [1.0, 2.0])
            sender.flush(step=1)
            assert sender.send({"loss": 4.0, "entropy": 5.0}, step=1, source="client-7")
        assert sender.stats()["filtered"] == 0  # the collector filters here
        wait_for(lambda: collector.counters.recorded == 2, "2 batches")
    acc = events(collector.run_dir)
    assert sorted(acc.Tags()["scalars"]) == ["worker/entropy", "worker/loss"]
    assert acc.Tags()["histograms"] == ["worker/hist"]
    assert collector.stats()["filtered"] == 4


def test_malformed_batches_are_counted_and_dropped_and_good_ones_still_land(tmp_path):
    config = make_config(tmp_path)
    good_header = json.dumps({"version": 1, "source": "worker-0", "step": 1, "time": 1.0})
    mismatch = Message(
        MessageType.METRICS,
        tensors={
            Role.METRIC_NAMES: np.frombuffer(b"a\nb", np.uint8),
            Role.METRIC_VALUES: np.zeros(3),
        },
    )
    bad = [
        [b"garbage"],
        [b"\x00\x01\x02", b"\x03\x04"],
        [b"{not json", *encode(messages.metrics(0, {"a": 1.0}))],
        [b'{"version": 2, "source": "w-0", "step": 1, "time": 1}', b"x"],
        [good_header.encode(), b"not an rlx frame"],
        [good_header.encode(), *encode(messages.simple(MessageType.HEARTBEAT))],
        [good_header.encode(), *encode(mismatch)],
    ]
    with running(config) as collector:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.linger = 0
        push.connect(config.metrics.endpoint)
        try:
            for frames in bad:
                push.send_multipart(frames)
            wait_for(lambda: collector.counters.malformed == len(bad), "the bad batches")
            push.send_multipart(encode_batch("worker-0", 3, {"survivor": 42.0}, time=2.0))
            wait_for(lambda: collector.counters.recorded == 1, "the good batch")
        finally:
            push.close(0)
    stats = collector.stats()
    assert stats["received"] == len(bad) + 1
    assert stats["malformed_frames"] == 1
    assert stats["malformed_header"] == 3
    assert stats["malformed_rlx"] == 2
    assert stats["malformed_metrics"] == 1
    assert stats["errors"] == 0
    acc = events(collector.run_dir)
    assert scalars(acc, "worker/survivor") == [(3, 42.0)]
    assert acc.Scalars("worker/survivor")[0].wall_time == 2.0


def test_client_metrics_through_a_session_host_get_arrival_steps(tmp_path):
    config = make_config(tmp_path, log_to_console=True)
    console = _Lines()
    with running(config, console=console) as collector:
        with MetricsSender.from_config(config, "worker-0") as sender:
            host = SessionHost(
                LinearPolicyAgent({"actions": 2}), metrics_sink=SessionMetricsSink(sender)
            )
            host.assign(100, 1)
            host.assign(200, 2)
            for i, (sid, n) in enumerate([(100, 1), (200, 2), (100, 1)]):
                request = messages.metrics(
                    sid, {names.EPISODE_REWARD: float(i)}, {"obs": [i, i + 1]}, session_count=n
                )
                assert host.handle_one(request).type == MessageType.DONE
            wait_for(lambda: collector.counters.recorded == 3, "3 batches")
    acc = events(collector.run_dir)
    assert scalars(acc, "client/episode_reward") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert [h.histogram_value.sum for h in acc.Histograms("client/obs")] == [1, 3, 5]
    assert len(console.lines) == 3
    assert console.lines[1].startswith("metrics client-200 step -: episode_reward=1")
    assert "obs=[n=2" in console.lines[1]


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.extend(text.splitlines())

    def flush(self) -> None:
        pass


def test_collector_flushes_every_flush_interval(tmp_path):
    config = make_config(tmp_path, flush_interval=0.05)
    with running(config) as collector:
        with MetricsSender.from_config(config, "worker-0") as sender:
            sender.scalar("x", 1.5)
            sender.flush(step=4)
        wait_for(lambda: collector.counters.recorded == 1, "the batch")
        wait_for(lambda: collector.counters.flushes >= 3, "three periodic flushes")
        # readable while the collector runs
        assert scalars(events(collector.run_dir), "worker/x") == [(4, 1.5)]


def test_daemon_subprocess_flushes_on_sigterm_and_exits_0(tmp_path):
    # a long flush interval: what lands in the file was written by the SIGTERM flush
    mapping = app(tmp_path, flush_interval=3600, log_to_console=True)
    (tmp_path / "app.yaml").write_text(json.dumps(mapping))  # JSON is YAML
    config = parse_config(mapping, app_dir=tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaax_zmq.metrics", "--config", str(tmp_path / "app.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        with MetricsSender.from_config(config, "worker-0") as sender:
            sender.scalar(names.EPISODE_REWARD, 7.5)
            sender.histogram(names.ACTIONS, [1.0, 2.0, 3.0])
            sender.flush(step=11)
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the console line: the batch was received
        assert line.startswith("metrics worker-0 step 11: episode_reward=7.5"), line
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert "collecting metrics on" in stderr
    acc = events(tmp_path / "tb")
    assert scalars(acc, "worker/episode_reward") == [(11, 7.5)]
    (hist,) = acc.Histograms("worker/actions")
    assert hist.step == 11 and hist.histogram_value.sum == 6.0


def test_daemon_with_a_taken_endpoint_exits_with_a_message(tmp_path):
    mapping = app(tmp_path)
    (tmp_path / "app.yaml").write_text(json.dumps(mapping))
    taken = zmq.Context.instance().socket(zmq.PULL)
    taken.linger = 0
    taken.bind(mapping["metrics"]["endpoint"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "relaax_zmq.metrics", "--config", str(tmp_path / "app.yaml")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.close(0)
    assert result.returncode == 1
    assert mapping["metrics"]["endpoint"] in result.stderr
