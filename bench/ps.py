"""Sharded parameter servers: gradient ingest and weight broadcast, against raw pyzmq.

Run: ``python -m bench.ps [--quick]``. Everything runs on this machine as real
processes over tcp loopback: shards are ``python -m relaax_zmq.ps`` daemons, workers
are processes with a real ``ParameterClient``; the model is ``linear_pg``'s
(``(state_size + 1) * actions`` float32 parameters, Adam, ``update: async``,
``combine: fifo``: every applied gradient is one version of every shard).

- ``raw_push_pull``: the baseline. Two processes PUSH the very frames a worker sends
  a one-shard model (a GRADIENT header and 10^7 float32 in 4 MiB frames), a PULL in a
  third process only receives them; MB/s of payload from its first message to its
  last. ``raw_single_frame``: the same bytes as one 40 MB frame, as a naive sender
  would send them (what the wire's chunking gains).
- ``shards_1`` / ``shards_2``: two pusher workers push one fixed gradient as fast as
  the shards take it (each keeps ``WINDOW`` gradients in flight, counted against the
  versions it sees: unpaced, ZeroMQ would queue hundreds of 40 MB slices); ingest is
  the gradient bytes the shards APPLIED per second, read from the versions the
  workers see in the shards' publications (sum over shards of versions gained times
  slice bytes), over a window that starts after a warm-up.
- ``broadcast``: two workers hold consistent weights; one pushes a gradient and the
  time until both hold the new version (``wait_consistent(newer_than=...)``) is one
  sample (the first update, a warm-up, is left out). Processes share
  CLOCK_MONOTONIC, so their stamps compare directly.

``--quick`` (the smoke test's): 10^5 parameters, broadcasts of 10^4 and 10^5 (under
the same keys; ``ingest_params`` and ``broadcast_params`` say what was measured).

Children talk to the bench in JSON lines on stdin/stdout (nothing is pickled). The
last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench.timing import exit_on_sigterm, table
from relaax_zmq.config import load_config
from relaax_zmq.ps import ParameterClient, load_spec, shard_bounds, wire
from relaax_zmq.ps.partition import Slice
from relaax_zmq.runtime.ports import free_port, free_port_range
from relaax_zmq.testing import LINEAR_PG_PATH

ROOT = Path(__file__).resolve().parents[1]
PUSHERS = 2
#: Gradients each pusher keeps in flight (pushed, not yet seen applied).
WINDOW = 4
#: Messages the raw baseline queues per socket (bounded memory at 40 MB a message).
RAW_HWM = 4
ACTIONS = 10
FLOAT_BYTES = 4
#: Seconds a child may take to start and show it is ready.
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sizes:
    """What one run measures: model sizes, windows, samples."""

    ingest_params: int
    broadcast_params: tuple[int, int]
    seconds: float  # ingest window
    warmup: float  # pushing before the window opens
    raw_mb: float  # payload each raw pusher sends
    rounds: int  # broadcast samples per size


FULL = Sizes(10**7, (10**6, 10**7), seconds=8.0, warmup=1.5, raw_mb=1200, rounds=11)
QUICK = Sizes(10**5, (10**4, 10**5), seconds=1.0, warmup=0.3, raw_mb=100, rounds=3)


# -- child processes ----------------------------------------------------------------------


@dataclass
class Child:
    """A process the bench started; JSON lines on its stdout, its stderr in a log file."""

    name: str
    proc: subprocess.Popen
    log: Path
    _buffer: bytes = field(default=b"", repr=False)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the child prints; an error (with its log) on timeout or exit."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError(f"{self.name}: no answer in {timeout:.0f} s\n{self.tail()}")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"{self.name} exited ({self.proc.wait()})\n{self.tail()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s; the pipes closed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


Launcher = Callable[..., Child]


@contextmanager
def launched(folder: Path) -> Iterator[Launcher]:
    """``start(name, *argv, talks=True)`` runs a child; every child is stopped at the end."""
    folder.mkdir(parents=True)
    children: list[Child] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def start(name: str, *argv: str, talks: bool = True) -> Child:
        log = folder / f"{name}.log"
        with open(log, "wb") as err:
            pipe = subprocess.PIPE if talks else subprocess.DEVNULL
            proc = subprocess.Popen(
                [sys.executable, *argv],
                stdin=pipe,
                stdout=pipe if talks else err,
                stderr=err,
                cwd=ROOT,
                env=env,
            )
        children.append(Child(name, proc, log))
        return children[-1]

    try:
        yield start
    finally:
        for child in reversed(children):
            child.stop()


def start_role(start: Launcher, child: str, role: str, /, **spec: Any) -> Child:
    """``python -m bench.ps --role ROLE --spec JSON``: ``ROLES[role](**spec)``."""
    return start(child, "-m", "bench.ps", "--role", role, "--spec", json.dumps(spec))


def start_shards(start: Launcher, config: Path, shards: int) -> None:
    for i in range(shards):
        start(f"shard{i}", "-m", "relaax_zmq.ps", "--config", str(config), "--shard", str(i))


def start_together(children: list[Child]) -> None:
    """Wait until every child says it is ready, then tell them all to go."""
    for child in children:
        child.receive(START_TIMEOUT)
    for child in children:
        child.send({"go": True})


def say(message: dict[str, Any]) -> None:
    """A child's answer: one JSON line on stdout."""
    print(json.dumps(message), flush=True)


def hear() -> dict[str, Any]:
    """A child's order: one JSON line from stdin."""
    return json.loads(sys.stdin.readline())


# -- the app --------------------------------------------------------------------------------


def write_app(folder: Path, params: int, shards: int) -> Path:
    """An app file: ``linear_pg`` with ``params`` parameters (Adam) on ``shards`` shards."""
    if params % ACTIONS:
        raise ValueError(f"params: expected a multiple of {ACTIONS}, got {params}")
    algorithm = {"actions": ACTIONS, "state_size": params // ACTIONS - 1, "optimizer": "adam"}
    app = {
        "version": 1,
        "log_level": "WARNING",
        "environment": {"run": "bandit", "seed": 0},
        "algorithm": {"path": str(LINEAR_PG_PATH), "config": algorithm},
        "workers": {"count": PUSHERS},
        "metrics": {"endpoint": f"tcp://127.0.0.1:{free_port()}"},  # nobody listens
        "parameter_servers": {
            "shards": shards,
            "endpoints": {
                "gradients_port": free_port_range(shards),
                "weights_port": free_port_range(shards),
            },
            "update": "async",
            "combine": "fifo",
            "checkpoint": {"dir": None},
        },
    }
    path = folder / "app.yaml"
    path.write_text(json.dumps(app, indent=1))  # JSON is YAML
    return path


@contextmanager
def worker_client(config_path: str, name: str) -> Iterator[ParameterClient]:
    """A worker's ``ParameterClient`` for the app at ``config_path``, closed at the end."""
    config = load_config(config_path)
    spec = load_spec(config)
    assert spec is not None
    client = ParameterClient(
        config, spec.param_count, name, allow_mixed_versions=spec.allow_mixed_versions
    )
    try:
        yield client
    finally:
        client.close()


def gradient(params: int) -> np.ndarray:
    """A small finite gradient of the loss (never written to after a push)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal(params, dtype=np.float32) * np.float32(1e-3)


# -- the raw baseline -----------------------------------------------------------------------


def raw_push(endpoint: str, params: int, count: int, name: str, single_frame: bool) -> None:
    """Child: on ``go``, PUSH ``count`` times the frames a worker sends a one-shard model.

    ``single_frame``: the payload as one frame instead of the wire's 4 MiB chunks.
    """
    frames = wire.encode(wire.Gradient(0, name, 0, 1, 0, 0, gradient(params)))
    if single_frame:
        frames = [frames[0], np.concatenate(frames[1:])]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, RAW_HWM)
    sock.connect(endpoint)
    say({"ready": True})
    hear()
    for _ in range(count):
        sock.send_multipart(frames, copy=False)
    sock.close(linger=-1)  # until all are delivered
    ctx.term()


def raw_pull(endpoint: str, count: int) -> None:
    """Child: PULL ``count`` messages, doing nothing with them; payload MB/s after the first."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, RAW_HWM)
    sock.bind(endpoint)
    sock.recv_multipart(copy=False)  # the first message starts the clock
    start = time.perf_counter()
    payload = 0
    for _ in range(count - 1):
        payload += sum(len(frame) for frame in sock.recv_multipart(copy=False)[1:])
    wall = time.perf_counter() - start
    sock.close(0)
    ctx.term()
    say({"mb_per_s": payload / 1e6 / wall, "messages": count - 1, "seconds": wall})


def measure_raw(
    folder: Path, params: int, megabytes: float, single_frame: bool = False
) -> dict[str, float]:
    """Two raw pushers, ``megabytes`` of payload each, to one raw PULL."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    count = max(2, round(megabytes * 1e6 / (params * FLOAT_BYTES)))
    with launched(folder) as start:
        pull = start_role(start, "raw-pull", "raw-pull", endpoint=endpoint, count=PUSHERS * count)
        pushers = [
            start_role(
                start,
                f"raw-push{i}",
                "raw-push",
                endpoint=endpoint,
                params=params,
                count=count,
                name=f"w{i}",
                single_frame=single_frame,
            )
            for i in range(PUSHERS)
        ]
        start_together(pushers)
        return pull.receive(START_TIMEOUT)


# -- gradient ingest ------------------------------------------------------------------------


def pusher(config: str, name: str, seconds: float, warmup: float, window: int) -> None:
    """Child: push one gradient as fast as the shards apply it; report the versions seen.

    Before it says it is ready, one gradient has reached every shard (its sockets are
    connected). On ``go`` it pushes while fewer than ``window`` of its gradients are in
    flight (its share of the versions gained since ``go``), and reports the first and
    last (time, versions) seen in ``[go + warmup, go + warmup + seconds]``.
    """
    with worker_client(config, name) as client:
        if not client.wait_ready(START_TIMEOUT):
            raise SystemExit(f"{name}: no weights from the shards")
        grad = gradient(client.param_count)
        push_all(client, grad, client.weights()[1])
        say({"ready": True})
        hear()
        now = time.monotonic()
        opens, closes = now + warmup, now + warmup + seconds
        first, dropped = client.weights()[1], client.counters.dropped_full
        seen: list[tuple[float, list[int]]] = []
        pushes = 0
        while now < closes:
            changed = client.poll()
            versions = client.weights()[1]
            now = time.monotonic()
            if changed and opens <= now < closes:
                seen.append((now, versions.tolist()))
            if pushes - (versions - first).min() / PUSHERS < window:
                pushes += client.push(grad, versions, steps=1, episodes=0) > 0
            else:
                time.sleep(0.001)
        if len(seen) < 2:
            raise SystemExit(f"{name}: fewer than two new versions seen in {seconds} s")
        (t0, v0), (t1, v1) = seen[0], seen[-1]
        dropped = client.counters.dropped_full - dropped
        say({"t": [t0, t1], "versions": [v0, v1], "dropped_full": dropped})


def applied_mb_per_s(report: dict[str, Any], bounds: list[Slice]) -> float:
    """Gradient MB the shards applied per second between a pusher's first and last sight."""
    (t0, t1), (v0, v1) = report["t"], report["versions"]
    elements = sum((b - a) * s.count for a, b, s in zip(v0, v1, bounds, strict=True))
    return elements * FLOAT_BYTES / 1e6 / (t1 - t0)


def measure_ingest(folder: Path, params: int, shards: int, sizes: Sizes) -> dict[str, float]:
    with launched(folder) as start:
        config = write_app(folder, params, shards)
        start_shards(start, config, shards)
        pushers = [
            start_role(
                start,
                f"pusher{i}",
                "pusher",
                config=str(config),
                name=f"w{i}",
                seconds=sizes.seconds,
                warmup=sizes.warmup,
                window=WINDOW,
            )
            for i in range(PUSHERS)
        ]
        start_together(pushers)
        reports = [p.receive(sizes.warmup + sizes.seconds + 30) for p in pushers]
    bounds = shard_bounds(params, shards)
    mb_per_s = statistics.mean(applied_mb_per_s(r, bounds) for r in reports)
    return {
        "mb_per_s": mb_per_s,
        "gradients_per_s": mb_per_s * 1e6 / (params * FLOAT_BYTES),
        "dropped_full": sum(r["dropped_full"] for r in reports),
    }


# -- weight broadcast -----------------------------------------------------------------------


def watcher(config: str, name: str, rounds: int, lead: bool) -> None:
    """Child: ``rounds`` times, wait for the next version (the lead pushes it on ``go``)."""
    with worker_client(config, name) as client:
        if not client.wait_consistent(START_TIMEOUT):
            raise SystemExit(f"{name}: no consistent weights from the shards")
        grad = gradient(client.param_count)
        say({"ready": True})
        for _ in range(rounds):
            _, versions, _ = client.weights()
            pushed = None
            if lead:
                hear()
                pushed = push_all(client, grad, versions)
            if not client.wait_consistent(30, newer_than=int(versions[0])):
                raise SystemExit(f"{name}: version {versions[0] + 1} did not arrive")
            say({"pushed": pushed, "seen": time.monotonic()})


def push_all(client: ParameterClient, grad: np.ndarray, versions: np.ndarray) -> float:
    """Push until every shard took its slice; the time of the push that did.

    A worker may hold weights before its PUSH is connected (``ZMQ_IMMEDIATE`` then
    drops the slice): the first push can need a second try.
    """
    while True:
        pushed = time.monotonic()
        if client.push(grad, versions, steps=1, episodes=0) == len(client.bounds):
            return pushed
        client.poll()
        time.sleep(0.001)


def measure_broadcast(folder: Path, params: int, rounds: int) -> dict[str, float]:
    """Push to both workers holding the new version, consistently: median and max ms."""
    with launched(folder) as start:
        config = write_app(folder, params, shards=1)
        start_shards(start, config, 1)
        workers = [
            start_role(
                start,
                f"watcher{i}",
                "watcher",
                config=str(config),
                name=f"w{i}",
                rounds=rounds + 1,  # the first is a warm-up
                lead=i == 0,
            )
            for i in range(PUSHERS)
        ]
        for w in workers:
            w.receive(START_TIMEOUT)
        samples = []
        for _ in range(rounds + 1):
            workers[0].send({"go": True})
            lead, *others = [w.receive(30) for w in workers]
            seen = max(lead["seen"], *(o["seen"] for o in others))
            samples.append((seen - lead["pushed"]) * 1e3)
    samples = samples[1:]
    return {"median_ms": statistics.median(samples), "max_ms": max(samples)}


# -- main -----------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    """Every figure; each phase in its own processes, one after the other."""
    sizes = QUICK if quick else FULL
    n = sizes.ingest_params
    with tempfile.TemporaryDirectory(prefix="bench-ps-") as tmp:
        folder = Path(tmp)
        raw = measure_raw(folder / "raw", n, sizes.raw_mb)
        single = measure_raw(folder / "raw-single", n, sizes.raw_mb, single_frame=True)
        ingest = {s: measure_ingest(folder / f"ingest{s}", n, s, sizes) for s in (1, 2)}
        small, large = sizes.broadcast_params
        broadcast = {
            p: measure_broadcast(folder / f"broadcast{p}", p, sizes.rounds) for p in (small, large)
        }
    one, two = ingest[1]["mb_per_s"], ingest[2]["mb_per_s"]
    return {
        "ingest_mb_per_s": one,
        "raw_push_pull_mb_per_s": raw["mb_per_s"],
        "raw_single_frame_mb_per_s": single["mb_per_s"],
        "ingest_ratio": one / raw["mb_per_s"],
        "shards_1": one,
        "shards_2": two,
        "shards_2_over_1": two / one,
        "gradients_per_s_1": ingest[1]["gradients_per_s"],
        "gradients_per_s_2": ingest[2]["gradients_per_s"],
        "dropped_full": ingest[1]["dropped_full"] + ingest[2]["dropped_full"],
        "broadcast_ms_1e6": broadcast[small]["median_ms"],
        "broadcast_ms_1e7": broadcast[large]["median_ms"],
        "broadcast_max_ms_1e6": broadcast[small]["max_ms"],
        "broadcast_max_ms_1e7": broadcast[large]["max_ms"],
        "ingest_params": n,
        "broadcast_params": [small, large],
        "quick": quick,
    }


def report(f: dict[str, Any]) -> None:
    """Readable figures, then the JSON line (last)."""
    n = f["ingest_params"]
    raw = f["raw_push_pull_mb_per_s"]
    gradient_mb = n * FLOAT_BYTES / 1e6
    print(
        f"Parameter servers on this machine ({os.cpu_count()} CPU cores, tcp loopback, real "
        f"processes): {n:,} float32 parameters ({gradient_mb:,.1f} MB a gradient), Adam, async/fifo"
    )
    rows = [["gradient ingest, 2 pushing workers", "MB/s", "gradients/s", "x raw"]]
    rows.append(
        ["raw pyzmq PUSH/PULL (baseline)", f"{raw:,.0f}", f"{raw / gradient_mb:.1f}", "1.00"]
    )
    single = f["raw_single_frame_mb_per_s"]
    rows.append(
        [
            "raw, payload as one frame",
            f"{single:,.0f}",
            f"{single / gradient_mb:.1f}",
            f"{single / raw:.2f}",
        ]
    )
    for s in (1, 2):
        mb = f[f"shards_{s}"]
        rows.append(
            [f"{s} shard(s), applied", f"{mb:,.0f}", f"{mb / gradient_mb:.1f}", f"{mb / raw:.2f}"]
        )
    print(table(rows))
    print(f"\none shard / raw PUSH/PULL: {f['ingest_ratio']:.2f}x (target >= 0.7x)")
    print(f"2 shards / 1 shard: {f['shards_2_over_1']:.2f}x")
    print(f"gradient slices dropped by the workers (queue full): {f['dropped_full']}")
    small, large = f["broadcast_params"]
    print("\nweight broadcast: a push until both workers hold the new version, consistently")
    for p, key in ((small, "1e6"), (large, "1e7")):
        print(
            f"  {p:>12,} parameters: median {f[f'broadcast_ms_{key}']:.1f} ms, "
            f"max {f[f'broadcast_max_ms_{key}']:.1f} ms"
        )
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in f.items()}))


ROLES: dict[str, Callable[..., None]] = {
    "raw-push": raw_push,
    "raw-pull": raw_pull,
    "pusher": pusher,
    "watcher": watcher,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ps")
    parser.add_argument("--quick", action="store_true", help="small models, short windows")
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        ROLES[args.role](**json.loads(args.spec))
    else:
        report(run(args.quick))


if __name__ == "__main__":
    exit_on_sigterm()  # the processes it started stop with it
    main()
