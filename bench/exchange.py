"""End-to-end exchange speed: client -> broker -> worker -> client, against a raw pyzmq echo.

Run: ``python -m bench.exchange [--quick]``. Everything runs on this machine as
real processes over tcp loopback:

- ``raw_broker_echo``: the baseline. A minimal pyzmq ROUTER/ROUTER forwarder
  and a DEALER echo peer (no protocol work at all); a DEALER client sends the
  same RLX frames an update carries and waits for them to come back.
- ``sessions_1``: one ``AgentProxy`` through the real broker and one real
  worker running a tiny linear policy; round-trip time of ``update`` alone,
  and steps per second with CartPole-v1 stepped between updates.
- ``sessions_8``: 8 client processes, one session each, CartPole-v1.
- ``sessions_64``: one ``VectorAgentProxy`` block of 64 sessions driven by
  gymnasium's numpy-vectorised CartPole (64 environments in one process).
- ``serial_bound``: what ``sessions_64`` is judged against, measured in the same
  run from the same app config: the agent serial mode builds (``SerialRunner``,
  the same linear policy) behind an ``AgentBlock`` of 64 sessions, stepped by the
  very loop and the same 64 numpy-vectorised CartPole environments as
  ``sessions_64``, in this process with no codec and no sockets. Its ratio is the
  exchange's efficiency (goal: at least 0.7), which unlike absolute rates does
  not swing with the machine.

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench.timing import exit_on_sigterm, print_figures_line, table
from relaax_zmq.protocol import encode, messages
from relaax_zmq.runtime.admin_client import wait_for_workers
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.testing import LINEAR_POLICY_PATH

CARTPOLE_OBS = 4
CONFIG_NAME = "bench_exchange.yaml"
#: targets: one session's p50 RTT over the raw echo's (at most), and the 64-session
#: case's steps/s over the serial bound's (at least)
RTT_TARGET = 1.5
EFFICIENCY_TARGET = 0.7


def percentiles(samples_s: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_s) * 1e6
    return {
        "rtt_p50_us": float(np.percentile(arr, 50)),
        "rtt_p99_us": float(np.percentile(arr, 99)),
    }


# -- the raw pyzmq baseline ---------------------------------------------------------------


def raw_broker(frontend: str, backend: str) -> None:
    """A ROUTER/ROUTER forwarder: the least a broker can do (one worker, no protocol)."""
    ctx = zmq.Context()
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER)
    front.bind(frontend)
    back.bind(backend)
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    worker: bytes | None = None
    while True:
        for sock, _ in poller.poll():
            if sock is front:
                frames = front.recv_multipart(copy=False)
                if worker is not None:
                    back.send_multipart([worker, *frames], copy=False)
            else:
                frames = back.recv_multipart(copy=False)
                worker = frames[0].bytes
                if len(frames) > 2:  # [worker, client, *payload]; a bare [worker, b""] registers
                    front.send_multipart(frames[1:], copy=False)


def raw_echo(backend: str) -> None:
    """A DEALER that sends every message straight back."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(backend)
    sock.send(b"")  # register
    while True:
        sock.send_multipart(sock.recv_multipart(copy=False), copy=False)


def measure_raw_echo(steps: int) -> dict[str, float]:
    front, back = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with (
        spawn("raw-broker", "--frontend", front, "--backend", back),
        spawn("raw-echo", "--backend", back),
    ):
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(front)
        frames = encode(
            messages.update(
                1, reward=np.ones(1, np.float32), state=np.zeros((1, CARTPOLE_OBS), np.float32)
            )
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the echo peer has registered
            sock.send_multipart(frames)
            if sock.poll(200):
                sock.recv_multipart()
                break
        while sock.poll(50):
            sock.recv_multipart()
        rtts = []
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            sock.send_multipart(frames, copy=False)
            sock.recv_multipart(copy=False)
            rtts.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        sock.close()
    return {"round_trips_per_s": steps / wall, **percentiles(rtts)}


# -- processes ---------------------------------------------------------------------------


@contextmanager
def spawn(role: str, *args: str) -> Iterator[subprocess.Popen]:
    """Run ``python -m bench.exchange --role ROLE ...`` until the block ends."""
    proc = _popen([sys.executable, "-m", "bench.exchange", "--role", role, *args])
    try:
        yield proc
    finally:
        _stop(proc)


def _popen(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(folder: Path, **broker: object) -> tuple[Path, dict[str, str]]:
    """An app on free ports with the linear policy; ``broker`` adds broker keys."""
    endpoints = {
        name: f"tcp://127.0.0.1:{free_port()}" for name in ("frontend", "backend", "admin")
    }
    config = {
        "version": 1,
        "log_level": "WARNING",
        "environment": {"run": "gym", "name": "CartPole-v1"},
        "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
        "broker": {**endpoints, "min_free_memory_mib": 0, **broker},
        "workers": {"max_sessions": 1024, "max_batch": 256},
    }
    path = folder / CONFIG_NAME
    path.write_text(json.dumps(config))  # JSON is YAML
    return path, endpoints


@contextmanager
def exchange(folder: Path, **broker: object) -> Iterator[dict[str, str]]:
    """A real broker and one real worker, up and registered (``broker``: broker keys)."""
    path, endpoints = write_config(folder, **broker)
    broker = _popen([sys.executable, "-m", "relaax_zmq.broker", "--config", str(path)])
    worker = _popen(
        [sys.executable, "-m", "relaax_zmq.worker", "--config", str(path), "--name", "w0"]
    )
    try:
        wait_for_workers(endpoints["admin"], 1)
        yield endpoints
    finally:
        _stop(worker)
        _stop(broker)


# -- clients -------------------------------------------------------------------------------


def update_round_trips(proxy: Any, steps: int) -> list[float]:
    """Seconds of each of ``steps`` updates of a CartPole-sized state (after 200 to warm up)."""
    state = np.zeros(CARTPOLE_OBS, np.float32)
    for _ in range(200):
        proxy.update(reward=1.0, state=state)
    rtts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        proxy.update(reward=1.0, state=state)
        rtts.append(time.perf_counter() - t0)
    return rtts


def single_session(frontend: str, steps: int) -> dict[str, float]:
    """One AgentProxy: RTT of update alone, then steps/s with CartPole stepped in between."""
    import gymnasium as gym

    from relaax_zmq.client import AgentProxy
    from relaax_zmq.errors import EpisodeRestart

    proxy = AgentProxy(frontend)
    proxy.connect()
    proxy.init()
    rtts = update_round_trips(proxy, steps)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    reward = None
    start = time.perf_counter()
    for _ in range(steps):
        try:
            action = proxy.update(reward=reward, state=obs)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                proxy.update(reward=reward, state=obs, terminal=terminated, truncated=truncated)
                obs, _ = env.reset()
                reward = None
        except EpisodeRestart:
            obs, _ = env.reset()
            reward = None
    wall = time.perf_counter() - start
    proxy.disconnect()
    return {"steps_per_s": steps / wall, **percentiles(rtts), "rtts": rtts}


def vector_sessions(frontend: str, n: int, rounds: int) -> dict[str, float]:
    """One block of n sessions over the exchange (``step_block``)."""
    from relaax_zmq.client import VectorAgentProxy

    return step_block(VectorAgentProxy(frontend, n), n, rounds, connect=True)


def serial_bound(config_path: Path, n: int, rounds: int) -> dict[str, float]:
    """The bound of ``vector_sessions``: the same app's agent as serial mode builds it,
    behind an ``AgentBlock`` (no codec, no sockets), stepped by ``step_block``."""
    from relaax_zmq.config.loader import load_config
    from relaax_zmq.serial import AgentBlock, SerialRunner

    runner = SerialRunner(load_config(config_path), sessions=1)  # only its agent is used
    for env in runner.envs.envs:
        env.close()
    try:
        return step_block(AgentBlock(runner.agent, n), n, rounds)
    finally:
        runner.agent.close()


def step_block(block: Any, n: int, rounds: int, *, connect: bool = False) -> dict[str, float]:
    """``rounds`` updates of ``block``'s n sessions (a ``VectorAgentProxy`` or an
    ``AgentBlock``), gymnasium's numpy-vectorised CartPole stepped in one call between."""
    import gymnasium as gym

    envs = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    if connect:
        block.connect()
    block.init()
    obs, _ = envs.reset(seed=0)
    rewards = None
    terminal = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    rtts = []
    start = time.perf_counter()
    for _ in range(rounds):
        t0 = time.perf_counter()
        actions = block.update(rewards, obs, terminal, truncated)
        rtts.append(time.perf_counter() - t0)
        obs, rew, terminal, truncated, _ = envs.step(actions)
        rewards = rew.astype(np.float32)
    wall = time.perf_counter() - start
    block.disconnect()
    envs.close()
    return {"steps_per_s": n * rounds / wall, **percentiles(rtts)}


def many_clients(frontend: str, clients: int, steps: int) -> dict[str, float]:
    procs = [
        _popen(
            [
                sys.executable,
                "-m",
                "bench.exchange",
                "--role",
                "client",
                "--frontend",
                frontend,
                "--steps",
                str(steps),
            ]
        )
        for _ in range(clients)
    ]
    results = []
    start = time.perf_counter()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"bench client failed: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - start
    rtts = [r for result in results for r in result["rtts"]]
    return {"steps_per_s": sum(r["steps"] for r in results) / wall, **percentiles(rtts)}


# -- main ---------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, dict[str, float]]:
    steps = 2000 if quick else 10000
    figures: dict[str, dict[str, float]] = {"raw_broker_echo": measure_raw_echo(steps)}
    with tempfile.TemporaryDirectory() as tmp, exchange(Path(tmp)) as endpoints:
        one = single_session(endpoints["frontend"], steps)
        one.pop("rtts")
        figures["sessions_1"] = one
        figures["sessions_8"] = many_clients(endpoints["frontend"], 8, steps // 4)
        # the bound just before the case it bounds, from the config the worker runs
        figures["serial_bound"] = serial_bound(Path(tmp) / CONFIG_NAME, 64, steps // 2)
        figures["sessions_64"] = vector_sessions(endpoints["frontend"], 64, steps // 2)
    raw, one = figures["raw_broker_echo"], figures["sessions_1"]
    many, bound = figures["sessions_64"], figures["serial_bound"]
    figures["ratios"] = {
        "sessions_1_rtt_p50_over_raw": one["rtt_p50_us"] / raw["rtt_p50_us"],
        "sessions_64_over_serial_bound": many["steps_per_s"] / bound["steps_per_s"],
        "sessions_64_steps_over_sessions_1": many["steps_per_s"] / one["steps_per_s"],
    }
    return figures


def report(figures: dict[str, dict[str, float]]) -> None:
    rows = [["case", "steps/s", "rtt p50 us", "rtt p99 us"]]
    for name in ("raw_broker_echo", "sessions_1", "sessions_8", "sessions_64", "serial_bound"):
        f = figures[name]
        rate = f.get("steps_per_s", f.get("round_trips_per_s", 0.0))
        rows.append([name, f"{rate:,.0f}", f"{f['rtt_p50_us']:.0f}", f"{f['rtt_p99_us']:.0f}"])
    print("Exchange end to end on this machine (tcp loopback, real processes)")
    print("serial_bound: the same 64 environments and policy in this process, no sockets")
    print(table(rows))
    r = figures["ratios"]
    print(
        f"\none session p50 RTT / raw pyzmq broker echo p50: "
        f"{r['sessions_1_rtt_p50_over_raw']:.2f}x (target <= {RTT_TARGET}x)"
    )
    print(
        f"64 batched sessions / serial bound: {figures['sessions_64']['steps_per_s']:,.0f} / "
        f"{figures['serial_bound']['steps_per_s']:,.0f} env steps/s = "
        f"{r['sessions_64_over_serial_bound']:.3f} (target >= {EFFICIENCY_TARGET}; "
        f"RELAAX reached 271 steps/s on 8 vCPUs)"
    )
    print_figures_line(figures, digits=3)  # the efficiency is a few hundredths today


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "raw-broker":
        raw_broker(args.frontend, args.backend)
    elif args.role == "raw-echo":
        raw_echo(args.backend)
    elif args.role == "client":
        result = single_session(args.frontend, args.steps)
        print(json.dumps({"steps": args.steps, "rtts": result["rtts"]}))
    else:
        report(run(args.quick))


if __name__ == "__main__":
    exit_on_sigterm()  # the processes it started stop with it
    main()
