"""1,000 concurrent sessions on one real broker, its memory bounded by the high-water marks.

One broker process and real worker processes (the linear test policy); client processes
(this file run as a script) each hold many DEALER sockets, one session (a block of one) per
socket. The broker's resident memory (``VmRSS`` of /proc/PID/status) is sampled every 20 ms
and must stay under ``rss_bound``: a baseline measured at start plus what ZeroMQ's pipes
may queue (``relaax_zmq.runtime.sockets.DEFAULT_HWM`` messages per pipe, at the size of the
messages this traffic sends), what the broker keeps per block in Python (at most
``broker.sessions.MAX_IN_FLIGHT`` requests) and a fixed cost per connection.

- ``test_thousand_sessions_...``: 1,000 sessions in 8 processes step at once and every one
  gets actions; then one socket per process floods (updates as fast as it can, never reading
  a reply) while the 992 others keep stepping, and every stepper still gets actions; then
  half the sessions close and the other half vanish and idle out: the broker's tables empty
  and its memory comes back near the baseline.
- ``test_flood_against_a_stalled_worker_...``: the worker is stopped (SIGSTOP) while 4
  sockets flood it: the broker keeps at most ``MAX_IN_FLIGHT`` requests per block (the rest
  are answered BUSY, and what the flooders never read is dropped at the HWM), its memory
  levels off (the second half of the flood adds at most half of what the first added: a leak
  adds as much in each half) under the bound, and once the worker
  continues and the blocks idle out it comes back near the baseline. Without the cap the
  broker kept every request (118,000 after 8 s, 329 MiB and growing).

Client protocol (stdin/stdout, one line each): the client prints ``ready {json}`` once its
sessions are open, then obeys ``step S``, ``flood S K`` (its first K sockets flood for S
seconds, the others step; the flooders are closed after) and ``release`` (close half, exit
without a word for the rest), answering each with a JSON line. Between commands its sessions
heartbeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
import zmq
from exchange_support import running_exchange, status
from support import Figures

from relaax_zmq.broker.memory import Trimmer, trim
from relaax_zmq.broker.sessions import MAX_IN_FLIGHT
from relaax_zmq.client.connection import client_spec
from relaax_zmq.protocol import ErrorCode, MessageType, decode, encode, link, messages
from relaax_zmq.runtime.sockets import DEFAULT_HWM, open_socket

CLIENT_PROCESSES = 8
SESSIONS_PER_CLIENT = 125
SESSIONS = CLIENT_PROCESSES * SESSIONS_PER_CLIENT
#: A CartPole-sized observation.
STATE_SIZE = 4
#: Seconds every session steps, then floods (one flooding socket per client process).
STEP_SECONDS, FLOOD_SECONDS, FLOODERS_PER_CLIENT = 3.0, 6.0, 1
#: broker.session_idle_timeout: the blocks of vanished clients go after this.
IDLE_TIMEOUT = 2.0
#: A client's open sessions heartbeat this often while it waits (opening the others,
#: between commands).
HEARTBEAT_EVERY = IDLE_TIMEOUT / 4
#: The soak: seconds of rounds.
SOAK_SECONDS = 300.0
#: The stalled-worker flood: flooding sockets, seconds.
STALL_FLOODERS, STALL_SECONDS = 4, 8.0
#: Growth of the broker's memory always allowed over the second half of a flood; above it,
#: the second half may add at most this share of the first half's growth (it levels off).
FLOOD_GROWTH_TOLERANCE, FLOOD_GROWTH_SHARE = 8 << 20, 0.5
#: How near the baseline the broker's memory comes back once every block is gone.
NEAR_BASELINE = 16 << 20
MIB = 1 << 20


# ------------------------------------------------------------------------------ the bound
#
# libzmq 4.3 queues each frame as one 64-byte zmq_msg_t; a frame above 33 bytes also owns
# (or shares) a heap block: sent by the broker, its bytes plus a 40-byte content header and
# malloc's 16; received, a pointer into the 8 KiB receive buffer it arrived in
# (ZMQ_IN_BATCH_SIZE, with a content header per 33 bytes: 18,160 bytes), which stays while
# any frame in it is queued. A flood's reads are full and carry many messages (we measured
# 9 to 17 of these per read on loopback); a received message is charged a quarter buffer.

ZMQ_MSG_T = 64
ZMQ_MAX_VSM = 33
ZMQ_CONTENT = 40 + 16
ZMQ_RECEIVE_BUFFER = 8192 + 8 + (8192 // ZMQ_MAX_VSM + 1) * 40
RECEIVE_SHARE = ZMQ_RECEIVE_BUFFER // 4
#: A connection: its two pipes (each a 256-message chunk and a spare), two receive
#: buffers (the engine's and one a queued frame may still hold) and an 8 KiB send batch.
PER_CONNECTION = 2 * 2 * 256 * ZMQ_MSG_T + 2 * ZMQ_RECEIVE_BUFFER + 8192
#: The broker's Python objects of one block (Block, its dicts and index entries) and of one
#: request in flight (InFlight, the frames list and its zmq.Frame objects, the dict slot).
PYTHON_BLOCK, PYTHON_IN_FLIGHT = 2048, 1024


def sent_bytes(frames: list[Any]) -> int:
    """Memory of a message the broker built, queued in a pipe."""
    return sum(ZMQ_MSG_T + (len(f) + ZMQ_CONTENT if len(f) > ZMQ_MAX_VSM else 0) for f in frames)


def received_bytes(frames: list[Any]) -> int:
    """Memory of a received message, queued in a pipe or kept by the broker."""
    shared = any(len(f) > ZMQ_MAX_VSM for f in frames)
    return ZMQ_MSG_T * len(frames) + (RECEIVE_SHARE if shared else 0)


def traffic_messages() -> dict[str, list[bytes]]:
    """The frames of every message this traffic puts in a broker pipe, at their largest."""
    sid = (1 << 62) - 2
    state = np.zeros((1, STATE_SIZE), np.float32)
    update = messages.update(sid, reward=np.ones(1, np.float32), state=state)
    action = messages.action(sid, np.zeros(1, np.int64))
    busy = messages.error(
        ErrorCode.BUSY,
        f"session {sid}: {MAX_IN_FLIGHT} requests in flight, at most; wait for their replies",
        session_id=sid,
        session_count=1,
    )
    identity = b"\0" * 5  # a ROUTER's identity for a peer without one
    frames = {
        name: [bytes(f) for f in encode(m)]
        for name, m in {"update": update, "action": action, "busy": busy}.items()
    }
    frames["reply"] = link.forward(link.Command.REPLY, identity, frames["action"])
    return frames


@dataclass(frozen=True)
class Traffic:
    """What the broker serves: stepping sessions (one request in flight each), how many of
    their sockets flood instead, and the workers."""

    sessions: int
    flooders: int
    workers: int


def rss_bound(baseline: int, traffic: Traffic) -> dict[str, int]:
    """The broker's memory bound for ``traffic``, by part (``total``: their sum)."""
    m = traffic_messages()
    update = received_bytes(m["update"])
    reply = max(sent_bytes(m["action"]), sent_bytes(m["busy"]))
    in_flight = traffic.sessions + traffic.flooders * (MAX_IN_FLIGHT - 1)
    parts = {
        "baseline": baseline,
        "connections": traffic.sessions * (PER_CONNECTION + PYTHON_BLOCK),
        # requests the broker keeps until their replies: one per stepper, the cap per flooder
        "in_flight": in_flight * (PYTHON_IN_FLIGHT + update),
        # a flooder's two pipes at their HWM: updates it sent, replies it does not read
        "flood_pipes": traffic.flooders * DEFAULT_HWM * (update + reply),
        # a request in flight waits in a worker's pipe (its frames point at the received
        # ones: one zmq_msg_t each) and then its reply in the broker's
        "link": min(in_flight, traffic.workers * DEFAULT_HWM)
        * (ZMQ_MSG_T * (2 + len(m["update"])) + received_bytes(m["reply"])),
    }
    parts["total"] = sum(parts.values())
    return parts


# ------------------------------------------------------------------------------ measuring


def vm_rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (``VmRSS`` of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status_file:
        for line in status_file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


class RssProbe(threading.Thread):
    """Samples a process's VmRSS every ``period`` seconds: ``peak`` and the ``samples``
    as (monotonic time, bytes)."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        super().__init__(daemon=True, name="rss-probe")
        self.pid = pid
        self.period = period
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()
        self.now()

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            try:
                self.now()
            except (OSError, RuntimeError):
                return  # the process is gone

    def now(self) -> int:
        """Sample now; the value."""
        value = vm_rss(self.pid)
        self.samples.append((time.monotonic(), value))
        return value

    def highest(self, start: float, end: float) -> int:
        """The largest sample taken between ``start`` and ``end``."""
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


@contextmanager
def probing(pid: int) -> Iterator[RssProbe]:
    probe = RssProbe(pid)
    probe.start()
    try:
        yield probe
    finally:
        probe.stopped.set()
        probe.join(5)


def settled_rss(pid: int, seconds: float = 1.0) -> int:
    """The smallest VmRSS over ``seconds`` (the broker at rest)."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(vm_rss(pid))
        time.sleep(0.05)
    return min(samples)


def wait_released(admin: str, timeout: float) -> dict[str, Any]:
    """The broker's status once it holds no block and no request in flight."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = status(admin)
        if last["sessions"]["blocks"] == 0 and last["queues"]["in_flight"] == 0:
            return last
        time.sleep(0.1)
    held = [(w["name"], w["blocks"], w["in_flight"]) for w in last["workers"]]
    raise AssertionError(
        f"blocks still held {timeout:g} s after their clients left: {last['sessions']}, "
        f"{last['queues']}, (worker, blocks, in flight): {held}"
    )


def rss_back_near(pid: int, target: int, timeout: float) -> int:
    """The broker's VmRSS once at most ``target`` (it trims at most every 5 s), or after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (rss := vm_rss(pid)) > target and time.monotonic() < deadline:
        time.sleep(0.1)
    return rss


# ------------------------------------------------------------------------------ clients


class ClientProcesses:
    """The client processes (this file as a script), driven line by line."""

    def __init__(self, endpoint: str, processes: int, sessions: int, folder: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.errs: list[IO[str]] = []
        # the script imports this module's test helpers too: tests/ and tests/faults/ on its path
        here = Path(__file__).resolve().parent
        path = [str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        for i in range(processes):
            err = open(folder / f"client-{i}.err", "w+")  # noqa: SIM115 (closed in stop)
            self.errs.append(err)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, endpoint, str(sessions)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=env,
                )
            )

    def ask(self, command: str | None, word: str, timeout: float) -> list[dict[str, Any]]:
        """Send ``command`` to every client (None: nothing) and read each one's answer."""
        if command is not None:
            for proc in self.procs:
                assert proc.stdin is not None
                proc.stdin.write(command + "\n")
                proc.stdin.flush()
        answers: list[Any] = [None] * len(self.procs)

        def read(i: int) -> None:
            stdout = self.procs[i].stdout
            assert stdout is not None
            line = stdout.readline()
            if line.startswith(word + " "):
                answers[i] = json.loads(line[len(word) + 1 :])

        readers = [
            threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(self.procs))
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + timeout
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        missing = [i for i, a in enumerate(answers) if a is None]
        if missing:
            raise AssertionError(f"clients {missing} gave no {word!r} answer:\n{self.stderr()}")
        return answers

    def stderr(self) -> str:
        out = []
        for i, err in enumerate(self.errs):
            err.flush()
            err.seek(0)
            out.append(f"--- client {i}\n{err.read()[-2000:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        for err in self.errs:
            err.close()


@contextmanager
def client_processes(
    endpoint: str, processes: int, sessions: int, folder: Path
) -> Iterator[ClientProcesses]:
    clients = ClientProcesses(endpoint, processes, sessions, folder)
    try:
        yield clients
    finally:
        clients.stop()


# ------------------------------------------------------------------------------ the tests


def exchange(folder: Path, workers: int, max_sessions: int, **broker: Any) -> Any:
    """A broker and ``workers`` worker processes; idle blocks go after ``IDLE_TIMEOUT``."""
    return running_exchange(
        folder,
        worker_count=workers,
        workers={"max_sessions": max_sessions},
        broker={
            "session_idle_timeout": IDLE_TIMEOUT,
            # the product's heartbeats with a generous liveness: the machine is shared
            "heartbeat_interval": 1.0,
            "heartbeat_liveness": 5,
            **broker,
        },
    )


@dataclass
class Cycle:
    """One round of 1,000 sessions: their answers to each command and what the broker said."""

    opened: dict[str, int]
    counters: dict[str, Any]  # the broker's counters once the sessions were open
    stepped: list[dict[str, Any]]
    flooded: list[dict[str, Any]]
    vanished: int  # sessions whose client left without closing them (flooders included)
    idle_released: int  # blocks the broker released as idle in this round
    back: int  # the broker's VmRSS once every block was gone

    def check(self, baseline: int) -> None:
        assert self.opened == {"blocks": SESSIONS, "sessions": SESSIONS}, (
            self.opened,
            self.counters,
        )
        # every session got actions, none was refused, while all 1,000 stepped
        assert [a["sessions"] for a in self.stepped] == [SESSIONS_PER_CLIENT] * CLIENT_PROCESSES
        assert all(a["min_actions"] >= 1 and not a["errors"] for a in self.stepped), self.stepped
        # the floods starved no stepper
        assert all(a["min_actions"] >= 1 and not a["errors"] for a in self.flooded), self.flooded
        # the sessions that vanished idled out (wait_released: no block is left); the memory
        # came back
        assert self.idle_released >= self.vanished >= SESSIONS // 2, self
        assert self.back <= baseline + NEAR_BASELINE, (self.back / MIB, baseline / MIB)


def serve_cycle(ex: Any, folder: Path, baseline: int, step_s: float, flood_s: float) -> Cycle:
    """Open 1,000 sessions, step them, flood, release them (the module docstring)."""
    idle_before = status(ex.admin)["counters"]["idle_released"]
    with client_processes(ex.frontend, CLIENT_PROCESSES, SESSIONS_PER_CLIENT, folder) as clients:
        clients.ask(None, "ready", 120)
        at_open = status(ex.admin)
        stepped = clients.ask(f"step {step_s}", "step", 120 + step_s)
        flooded = clients.ask(f"flood {flood_s} {FLOODERS_PER_CLIENT}", "flood", 120 + flood_s)
        left = clients.ask("release", "released", 60)
    idle = wait_released(ex.admin, 60)["counters"]["idle_released"] - idle_before
    back = rss_back_near(ex.broker.proc.pid, baseline + NEAR_BASELINE, 20)
    vanished = sum(a["vanished"] for a in left) + CLIENT_PROCESSES * FLOODERS_PER_CLIENT
    return Cycle(at_open["sessions"], at_open["counters"], stepped, flooded, vanished, idle, back)


def cycle_figures(figures: Figures, cycle: Cycle) -> None:
    figures.append("sessions", cycle.opened["sessions"])
    figures.append("step_actions", sum(a["actions"] for a in cycle.stepped))
    figures.append("flood_actions", sum(a["actions"] for a in cycle.flooded))
    figures.append("flood_sent", sum(a["flood_sent"] for a in cycle.flooded))
    figures.append("idle_released", cycle.idle_released)
    figures.append("released_mib", cycle.back / MIB)


def many_sessions(
    tmp_path: Path, name: str, *, seconds: float, step_s: float, flood_s: float
) -> None:
    """Serve rounds of 1,000 sessions on one broker (one, then more while ``seconds`` have
    not passed); check each, and the memory bound over all."""
    figures = Figures(name, tmp_path)
    with exchange(tmp_path, workers=2, max_sessions=600) as ex:
        pid = ex.broker.proc.pid
        baseline = settled_rss(pid)
        bound = rss_bound(baseline, Traffic(SESSIONS, CLIENT_PROCESSES * FLOODERS_PER_CLIENT, 2))
        figures.add("baseline_mib", baseline / MIB)
        figures.add("bound_mib", {k: v / MIB for k, v in bound.items()})
        started, done = time.monotonic(), 0
        with probing(pid) as probe:
            while done == 0 or time.monotonic() - started < seconds:
                try:
                    cycle = serve_cycle(ex, tmp_path, baseline, step_s, flood_s)
                    cycle_figures(figures, cycle)
                    cycle.check(baseline)
                except AssertionError:
                    print(ex.logs())
                    raise
                done += 1
                figures.add("peak_mib", probe.peak / MIB)
        figures.add("cycles", done)
        figures.add("counters", status(ex.admin)["counters"])
        figures.report()
    assert probe.peak <= bound["total"], (probe.peak / MIB, figures.values["bound_mib"])


def test_thousand_sessions_step_with_the_broker_memory_bounded(tmp_path: Path) -> None:
    many_sessions(tmp_path, "many_sessions", seconds=0, step_s=STEP_SECONDS, flood_s=FLOOD_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 300)
def test_thousand_sessions_soak(tmp_path: Path) -> None:
    """Rounds of 1,000 sessions (20 s stepping, 10 s flooding, release) for 5 minutes: every
    round passes and the broker's memory comes back each time (no creep)."""
    many_sessions(tmp_path, "many_sessions_soak", seconds=SOAK_SECONDS, step_s=20.0, flood_s=10.0)


def test_trimmer_trims_after_releases_at_most_once_per_interval() -> None:
    calls: list[float] = []
    trimmer = Trimmer(interval=5.0, release=lambda: calls.append(0.0) or True)
    trimmer.tick(0.0, removed=0)  # nothing released yet
    trimmer.tick(1.0, removed=3)  # released: trims
    trimmer.tick(2.0, removed=9)  # within the interval: waits
    trimmer.tick(6.5, removed=9)  # the interval passed: trims what was released meanwhile
    trimmer.tick(20.0, removed=9)  # nothing new released
    assert (len(calls), trimmer.trims) == (2, 2)
    assert trim() is (platform.libc_ver()[0] == "glibc")


def test_flood_against_a_stalled_worker_levels_off_under_the_bound(tmp_path: Path) -> None:
    figures = Figures("flood_stalled_worker", tmp_path)
    # a stopped worker stays registered (liveness 60 s): its blocks keep their requests
    with exchange(tmp_path, workers=1, max_sessions=64, heartbeat_liveness=60) as ex:
        pid = ex.broker.proc.pid
        baseline = settled_rss(pid)
        bound = rss_bound(baseline, Traffic(STALL_FLOODERS, STALL_FLOODERS, 1))
        worker = ex.workers["w0"].proc
        with (
            probing(pid) as probe,
            client_processes(ex.frontend, 1, STALL_FLOODERS, tmp_path) as clients,
        ):
            clients.ask(None, "ready", 60)
            worker.send_signal(signal.SIGSTOP)
            try:
                start = time.monotonic()
                flooded = clients.ask(f"flood {STALL_SECONDS} {STALL_FLOODERS}", "flood", 120)
                stalled = status(ex.admin)
            finally:
                worker.send_signal(signal.SIGCONT)
            half = start + STALL_SECONDS / 2
            first, second = probe.highest(start, half), probe.highest(half, start + STALL_SECONDS)
            released = wait_released(ex.admin, 60)
            back = rss_back_near(pid, baseline + NEAR_BASELINE, 20)
        figures.add("baseline_mib", baseline / MIB)
        figures.add("bound_mib", {k: v / MIB for k, v in bound.items()})
        figures.add("first_half_peak_mib", first / MIB)
        figures.add("second_half_peak_mib", second / MIB)
        figures.add("peak_mib", probe.peak / MIB)
        figures.add("released_mib", back / MIB)
        figures.add("flood_sent", sum(a["flood_sent"] for a in flooded))
        figures.add("stalled", {"queues": stalled["queues"], "counters": stalled["counters"]})
        figures.report()
    assert stalled["queues"]["in_flight"] <= STALL_FLOODERS * MAX_IN_FLIGHT, stalled["queues"]
    assert stalled["counters"]["errors"].get("BUSY", 0) > 0, stalled["counters"]
    allowed = max(FLOOD_GROWTH_TOLERANCE, FLOOD_GROWTH_SHARE * (first - baseline))
    assert second - first <= allowed, (baseline / MIB, first / MIB, second / MIB)
    assert probe.peak <= bound["total"], (probe.peak / MIB, figures.values["bound_mib"])
    assert released["counters"]["idle_released"] == STALL_FLOODERS
    assert back <= baseline + NEAR_BASELINE, (back / MIB, baseline / MIB)


# ------------------------------------------------------------------------------ the client


@dataclass
class Session:
    """One DEALER socket holding one block of one session."""

    sock: zmq.Socket
    session_id: int = 0
    sequence: int = 0
    waiting: bool = False
    stepped: bool = False
    actions: int = 0


@dataclass
class ClientTally:
    """What one command did, printed as a JSON line."""

    actions: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    flood_sent: int = 0
    flood_refused: int = 0

    def error(self, code: int) -> None:
        name = ErrorCode(code).name
        self.errors[name] = self.errors.get(name, 0) + 1


class Client:
    """``n`` sessions over ``n`` DEALER sockets of one process, driven by the commands."""

    def __init__(self, endpoint: str, n: int) -> None:
        self.context = zmq.Context()
        spec = client_spec(endpoint)
        self.sessions = [Session(open_socket(self.context, spec)) for _ in range(n)]
        self.by_socket = {s.sock: s for s in self.sessions}
        self.state = np.zeros((1, STATE_SIZE), np.float32)
        self.reward = np.ones(1, np.float32)
        self.next_beat = 0.0

    def init(self, timeout: float) -> None:
        """Open every session (BUSY is retried). The open ones heartbeat while others wait
        for a reply, so none idles out meanwhile; RuntimeError when one never opens."""
        deadline = time.monotonic() + timeout
        pending = list(self.sessions)
        while pending and time.monotonic() < deadline:
            for s in pending:
                self._send(s, messages.init(1))
            still = []
            for s in pending:
                reply = self._reply(s, deadline, beat=True)
                if reply is not None and reply.type == MessageType.READY:
                    s.session_id = reply.session_id
                else:
                    still.append(s)
            pending = still
            if pending:
                self._beat(force=True)
                time.sleep(0.2)
        if pending:
            raise RuntimeError(f"{len(pending)} sessions never opened")

    def step(self, seconds: float, flooders: int = 0) -> ClientTally:
        """Every session steps (one update in flight each) for ``seconds``; the first
        ``flooders`` sockets instead send updates as fast as they can, never reading."""
        tally = ClientTally()
        for s in self.sessions:
            s.actions = 0
        flood, steppers = self.sessions[:flooders], self.sessions[flooders:]
        poller = zmq.Poller()
        for s in steppers:
            poller.register(s.sock, zmq.POLLIN)
            self._update(s)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for s in flood:
                self._flood(s, tally)
            for sock, _ in poller.poll(0 if flood else 50):
                self._answer(self.by_socket[sock], tally, resend=True)
        # the last replies (a loaded machine may take a while)
        deadline = time.monotonic() + 30.0
        while any(s.waiting for s in steppers) and time.monotonic() < deadline:
            for sock, _ in poller.poll(100):
                self._answer(self.by_socket[sock], tally, resend=False)
        for s in flood:  # a flooder's block is left with whatever it queued
            s.sock.close(linger=0)
        self.sessions = steppers
        return tally

    def heartbeat(self) -> None:
        """A heartbeat for every session (refreshes its block's last-seen time), waited for."""
        self._beat(force=True)
        deadline = time.monotonic() + 30.0
        for s in self.sessions:
            self._reply(s, deadline)

    def release(self) -> dict[str, int]:
        """Close the first half of the sessions (sent, not waited for); the rest just vanish."""
        half = self.sessions[: len(self.sessions) // 2]
        for s in half:
            self._send(s, messages.simple(MessageType.CLOSE, s.session_id, 1))
        for s in half:
            s.sock.close(linger=2000)
        for s in self.sessions[len(half) :]:
            s.sock.close(linger=0)
        self.context.term()
        return {"closed": len(half), "vanished": len(self.sessions) - len(half)}

    def _update(self, s: Session) -> None:
        reward = self.reward if s.stepped else None  # an episode's first step has none
        self._send(s, messages.update(s.session_id, reward=reward, state=self.state))
        s.waiting = s.stepped = True

    def _answer(self, s: Session, tally: ClientTally, *, resend: bool) -> None:
        reply = decode(s.sock.recv_multipart(copy=False))
        if reply.sequence != s.sequence:
            return  # a heartbeat's late reply
        s.waiting = False
        if reply.type == MessageType.ACTION and reply.session_id == s.session_id:
            s.actions += 1
            tally.actions += 1
        elif reply.type == MessageType.ERROR:
            tally.error(messages.read_error(reply)[0])
        if resend:
            self._update(s)

    def _flood(self, s: Session, tally: ClientTally, burst: int = 64) -> None:
        for _ in range(burst):
            try:
                self._send(s, messages.update(s.session_id, state=self.state), zmq.NOBLOCK)
            except zmq.Again:  # this socket's own HWM: ZeroMQ pushes back
                tally.flood_refused += 1
                return
            tally.flood_sent += 1

    def _send(self, s: Session, message: Any, flags: int = 0) -> None:
        s.sequence += 1
        message.sequence = s.sequence
        s.sock.send_multipart(encode(message), flags, copy=False)

    def _reply(self, s: Session, deadline: float, *, beat: bool = False) -> Any:
        """The reply to ``s``'s last request (older ones are skipped); None at ``deadline``.
        ``beat``: the open sessions heartbeat meanwhile (``_beat``)."""
        while (left := deadline - time.monotonic()) > 0:
            if beat:
                self._beat()
                left = min(left, HEARTBEAT_EVERY)
            if not s.sock.poll(int(left * 1000) + 1):
                continue
            reply = decode(s.sock.recv_multipart(copy=False))
            if reply.sequence == s.sequence:
                return reply
        return None

    def _beat(self, *, force: bool = False) -> None:
        """A heartbeat for every open session, at most every ``HEARTBEAT_EVERY`` seconds
        (``force``: now); not waited for (its reply is skipped as an older one)."""
        now = time.monotonic()
        if not force and now < self.next_beat:
            return
        self.next_beat = now + HEARTBEAT_EVERY
        for s in self.sessions:
            if s.session_id:
                self._send(s, messages.simple(MessageType.HEARTBEAT, s.session_id, 1))


def client_main(argv: list[str] | None = None) -> None:
    """The client process: open the sessions, then obey commands on stdin."""
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("sessions", type=int)
    args = parser.parse_args(argv)
    client = Client(args.endpoint, args.sessions)
    client.init(timeout=60.0)
    _say("ready", {"sessions": len(client.sessions)})
    while True:
        # between commands the sessions heartbeat, so that none idles out while others start
        if not select.select([sys.stdin], [], [], HEARTBEAT_EVERY)[0]:
            client.heartbeat()
            continue
        command, *rest = sys.stdin.readline().split() or ["release"]
        if command == "step":
            tally = client.step(float(rest[0]))
        elif command == "flood":
            tally = client.step(float(rest[0]), flooders=int(rest[1]))
        else:
            _say("released", client.release())
            return
        done = [s.actions for s in client.sessions]
        _say(command, {**vars(tally), "min_actions": min(done, default=0), "sessions": len(done)})


def _say(word: str, body: dict[str, Any]) -> None:
    print(word, json.dumps(body), flush=True)


if __name__ == "__main__":
    client_main()
