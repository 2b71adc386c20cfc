"""The WebSocket gateway against the broker's own ZeroMQ frontend, in the same run.

Run: ``python -m bench.gateway [--quick]``. A real broker, one real worker (the linear
test policy) and a real gateway daemon on tcp loopback; the same Python client code
(``AgentProxy``/``VectorAgentProxy``) talks to ``broker.frontend`` (``tcp://``) or to the
gateway (``ws://``), so only the transport differs:

- ``direct_1``, ``gateway_1``: one session's update round trip (p50, p99), measured in
  turns (direct, gateway, direct, gateway) so that a drift of the machine hits both;
- ``direct_64``, ``gateway_64``: steps/s of a block of 64 CartPole sessions (gymnasium's
  vectorised CartPole stepped between updates), in turns too, the means of two turns;
- ``connections_500``: the gateway's memory (RSS) idle and with 500 connections open,
  each holding a session;
- ``flood``: one session's round trip through the gateway while another connection
  sends messages of twice the legal size as fast as it can (refused TOO_LARGE, then cut
  by the refusal budget; it reconnects and goes on), against the quiet round trip.

Targets (docs/gateway.md): one session within 1.5x of the direct round trip, the 64-block
at least 0.7x of the ZeroMQ block's steps/s, the flood moving p99 by at most 1.5x. The
last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench.exchange import (
    _popen,
    _stop,
    percentiles,
    step_block,
    update_round_trips,
    write_config,
)
from bench.timing import exit_on_sigterm, print_figures_line, table
from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.protocol import encode, messages
from relaax_zmq.protocol.websocket import pack
from relaax_zmq.runtime.admin_client import wait_for_workers
from relaax_zmq.runtime.ports import free_port

LEGAL_BYTES = 64 << 10
RTT_TARGET = 1.5
BLOCK_TARGET = 0.7
FLOOD_TARGET = 1.5


@contextmanager
def stack(folder: Path) -> Iterator[dict[str, object]]:
    """Broker, worker and gateway daemons, up; their endpoints and the gateway's process."""
    path, endpoints = write_config(folder)
    config = json.loads(path.read_text())
    port = free_port()
    config["gateway"] = {"enabled": True, "port": port, "max_message_bytes": LEGAL_BYTES}
    path.write_text(json.dumps(config))
    procs = []
    try:
        for module, extra in (
            ("relaax_zmq.broker", []),
            ("relaax_zmq.worker", ["--name", "w0"]),
            ("relaax_zmq.gateway", []),
        ):
            procs.append(_popen([sys.executable, "-m", module, "--config", str(path), *extra]))
        wait_for_workers(endpoints["admin"], 1)
        url = f"ws://127.0.0.1:{port}/rlx"
        _wait_for_gateway(url, procs[-1])
        yield {**endpoints, "url": url, "gateway_pid": procs[-1].pid}
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _wait_for_gateway(url: str, proc: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with AgentProxy(url, request_timeout=1.0) as probe:
                probe.init()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"the gateway at {url} did not answer within {timeout} s")


def round_trips(endpoint: str, steps: int) -> list[float]:
    with AgentProxy(endpoint) as proxy:
        proxy.init()
        return update_round_trips(proxy, steps)


def block_rate(endpoint: str, rounds: int) -> dict[str, float]:
    return step_block(VectorAgentProxy(endpoint, 64), 64, rounds, connect=True)


async def _hold(url: str, count: int, ready: asyncio.Event, release: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    from relaax_zmq.protocol.websocket import unpack

    async def one(i: int) -> None:
        async with connect(url, subprotocols=["rlx.v1"], compression=None) as ws:
            await ws.send(pack(encode(messages.init(sequence=i + 1))))
            unpack(await ws.recv(), 66)
            held.append(i)
            if len(held) == count:
                ready.set()
            await release.wait()

    held: list[int] = []
    await asyncio.gather(*(one(i) for i in range(count)))


def connections_memory(url: str, pid: int, count: int) -> dict[str, float]:
    """The gateway's RSS idle and with ``count`` connections open, each with a session."""
    process = psutil.Process(pid)
    idle = process.memory_info().rss

    async def main() -> float:
        ready, release = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(_hold(url, count, ready, release))
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)
        rss = process.memory_info().rss
        release.set()
        await task
        return rss

    held = asyncio.run(main())
    return {
        "idle_rss_mib": idle / 2**20,
        "rss_mib": held / 2**20,
        "per_connection_kib": (held - idle) / count / 1024,
        "connections": float(count),
    }


def abuse(url: str, frame_bytes: int, seconds: float) -> dict[str, int]:
    """Send init headers with ``frame_bytes`` of payload as fast as the gateway lets us,
    reconnecting when closed; count sends, answers and closes."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    data = pack([encode(messages.init())[0], b"\0" * frame_bytes])
    counts = {"sent": 0, "answered": 0, "closed": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop:
        try:
            with connect(url, subprotocols=["rlx.v1"], compression=None, close_timeout=0.1) as ws:
                while time.monotonic() < deadline and not stop:
                    ws.send(data)
                    counts["sent"] += 1
                    while True:
                        try:
                            ws.recv(0)
                        except TimeoutError:
                            break
                        counts["answered"] += 1
        except (ConnectionClosed, InvalidStatus, OSError):
            counts["closed"] += 1
            time.sleep(0.01)
    return counts


def flooded(url: str, steps: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.gateway", "--role", "abuser", "--url", url]
    proc = _popen([*cmd, "--bytes", str(2 * LEGAL_BYTES), "--seconds", "600"])
    try:
        time.sleep(1.0)
        figures = percentiles(round_trips(url, steps))
    finally:
        _stop(proc)
    out = proc.stdout.read() if proc.stdout else ""
    counts = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return {**figures, **{f"abuser_{k}": float(v) for k, v in counts.items()}}


def run(quick: bool) -> dict[str, dict[str, float]]:
    steps = 2000 if quick else 10000
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, stack(Path(tmp)) as ends:
        direct, web = str(ends["frontend"]), str(ends["url"])
        samples: dict[str, list[float]] = {"direct_1": [], "gateway_1": []}
        for _ in range(2):
            samples["direct_1"] += round_trips(direct, steps // 2)
            samples["gateway_1"] += round_trips(web, steps // 2)
        figures.update({name: percentiles(s) for name, s in samples.items()})
        blocks: dict[str, list[dict[str, float]]] = {"direct_64": [], "gateway_64": []}
        for _ in range(2):  # in turns, as above
            blocks["direct_64"].append(block_rate(direct, steps // 4))
            blocks["gateway_64"].append(block_rate(web, steps // 4))
        for name, runs in blocks.items():
            figures[name] = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
        figures["connections_500"] = connections_memory(web, int(ends["gateway_pid"]), 500)
        figures["flood"] = flooded(web, steps)
    d1, g1 = figures["direct_1"], figures["gateway_1"]
    figures["ratios"] = {
        "gateway_1_p50_over_direct": g1["rtt_p50_us"] / d1["rtt_p50_us"],
        "gateway_1_p99_over_direct": g1["rtt_p99_us"] / d1["rtt_p99_us"],
        "gateway_64_over_direct": figures["gateway_64"]["steps_per_s"]
        / figures["direct_64"]["steps_per_s"],
        "flood_p50_over_quiet": figures["flood"]["rtt_p50_us"] / g1["rtt_p50_us"],
        "flood_p99_over_quiet": figures["flood"]["rtt_p99_us"] / g1["rtt_p99_us"],
    }
    return figures


def report(figures: dict[str, dict[str, float]]) -> None:
    rows = [["case", "steps/s", "rtt p50 us", "rtt p99 us"]]
    for name in ("direct_1", "gateway_1", "direct_64", "gateway_64", "flood"):
        f = figures[name]
        rate = f"{f['steps_per_s']:,.0f}" if "steps_per_s" in f else "-"
        rows.append([name, rate, f"{f['rtt_p50_us']:.0f}", f"{f['rtt_p99_us']:.0f}"])
    print("The WebSocket gateway against the broker's ZeroMQ frontend (tcp loopback, same run)")
    print(table(rows))
    r, m, fl = figures["ratios"], figures["connections_500"], figures["flood"]
    print(
        f"\none session through the gateway: p50 {r['gateway_1_p50_over_direct']:.2f}x, "
        f"p99 {r['gateway_1_p99_over_direct']:.2f}x the direct round trip "
        f"(target <= {RTT_TARGET}x)"
    )
    print(
        f"64-session block over WebSocket: {r['gateway_64_over_direct']:.2f}x the ZeroMQ "
        f"block's steps/s (target >= {BLOCK_TARGET}x)"
    )
    print(
        f"gateway memory: {m['idle_rss_mib']:.1f} MiB idle, {m['rss_mib']:.1f} MiB with "
        f"{m['connections']:.0f} connections ({m['per_connection_kib']:.0f} KiB each)"
    )
    print(
        f"a flood at twice the legal size ({fl.get('abuser_sent', 0):,.0f} sent, "
        f"{fl.get('abuser_closed', 0):,.0f} times closed): the other session's p50 "
        f"{r['flood_p50_over_quiet']:.2f}x, p99 {r['flood_p99_over_quiet']:.2f}x "
        f"(target p99 <= {FLOOD_TARGET}x)"
    )
    print_figures_line(figures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, default=2 * LEGAL_BYTES, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "abuser":
        print(json.dumps(abuse(args.url, args.bytes, args.seconds)), flush=True)
        return
    report(run(args.quick))


if __name__ == "__main__":
    exit_on_sigterm()
    main()
