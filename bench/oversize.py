"""Oversized messages: a peer above the frontend's frame limit is dropped alone.

Run: ``python -m bench.oversize [--quick]``. A real broker and worker (tcp loopback,
``broker.max_message_bytes`` 64 KiB, so ZeroMQ's frame limit is 128 KiB); one
``AgentProxy`` session measures its update round trip while, in another process, an
abuser keeps sending messages:

- ``baseline``: nobody else on the broker;
- ``at_limit``: frames of exactly the frame limit, which the broker reads and refuses
  with TOO_LARGE (the worst case that costs the broker a decode);
- ``one_byte_over``: frames one byte above it, which ZeroMQ drops with the abuser's
  connection (the abuser reconnects and sends again).

It prints the session's p50/p99 round trip in each phase, the ratios to the baseline,
how many messages the abuser sent and how many answers it got, and ends with one JSON
line of the figures.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import zmq

from bench.exchange import _popen, _stop, exchange, percentiles, update_round_trips
from bench.timing import print_figures_line, table
from relaax_zmq.client import AgentProxy
from relaax_zmq.protocol import encode, messages
from relaax_zmq.runtime.admin_client import broker_status

LEGAL_BYTES = 64 << 10
FRAME_LIMIT = 2 * LEGAL_BYTES


def abuse(frontend: str, frame_bytes: int, seconds: float) -> dict[str, int]:
    """Send ``[init header, frame_bytes]`` messages for ``seconds`` or until SIGTERM;
    count sends and answers."""
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 16)
    sock.connect(frontend)
    header, payload = encode(messages.init())[0], b"\0" * frame_bytes
    sent = answered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop:
        try:
            sock.send_multipart([header, payload], zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            time.sleep(0.001)
        while sock.poll(0):
            sock.recv_multipart()
            answered += 1
    sock.close()
    ctx.term()
    return {"sent": sent, "answered": answered}


def session_rtts(frontend: str, steps: int) -> list[float]:
    """Round trips of ``steps`` updates of one session (after a warm-up)."""
    proxy = AgentProxy(frontend)
    proxy.init()
    rtts = update_round_trips(proxy, steps)
    proxy.disconnect()
    return rtts


def phase(frontend: str, steps: int, frame_bytes: int | None) -> dict[str, float]:
    """The session's round trips while an abuser sends ``frame_bytes`` frames (None: none)."""
    if frame_bytes is None:
        return percentiles(session_rtts(frontend, steps))
    cmd = [sys.executable, "-m", "bench.oversize", "--role", "abuser", "--frontend", frontend]
    proc = _popen([*cmd, "--bytes", str(frame_bytes), "--seconds", "600"])
    try:
        time.sleep(1.0)  # the abuser is running
        figures = percentiles(session_rtts(frontend, steps))
    finally:
        _stop(proc)  # SIGTERM: it prints what it did
    out = proc.stdout.read() if proc.stdout else ""
    counts = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return {**figures, **{f"abuser_{k}": float(v) for k, v in counts.items()}}


def run(quick: bool) -> dict[str, dict[str, float]]:
    steps = 2000 if quick else 10000
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with exchange(Path(tmp), max_message_bytes=LEGAL_BYTES) as endpoints:
            frontend = endpoints["frontend"]
            figures["baseline"] = phase(frontend, steps, None)
            figures["at_limit"] = phase(frontend, steps, FRAME_LIMIT)
            figures["one_byte_over"] = phase(frontend, steps, FRAME_LIMIT + 1)
            errors = broker_status(endpoints["admin"])["counters"]["errors"]
    base = figures["baseline"]
    figures["ratios"] = {
        f"{name}_{q}": figures[name][f"rtt_{q}_us"] / base[f"rtt_{q}_us"]
        for name in ("at_limit", "one_byte_over")
        for q in ("p50", "p99")
    }
    figures["broker"] = {"too_large_errors": float(errors.get("TOO_LARGE", 0))}
    return figures


def report(figures: dict[str, dict[str, float]]) -> None:
    rows = [["phase", "rtt p50 us", "rtt p99 us", "abuser sent", "abuser answered"]]
    for name in ("baseline", "at_limit", "one_byte_over"):
        f = figures[name]
        rows.append(
            [
                name,
                f"{f['rtt_p50_us']:.0f}",
                f"{f['rtt_p99_us']:.0f}",
                f"{f.get('abuser_sent', 0):,.0f}",
                f"{f.get('abuser_answered', 0):,.0f}",
            ]
        )
    print(f"One session's round trip while a peer sends oversized frames (limit {FRAME_LIMIT} B)")
    print(table(rows))
    r = figures["ratios"]
    print(
        f"\none byte over: p50 {r['one_byte_over_p50']:.2f}x, p99 {r['one_byte_over_p99']:.2f}x "
        f"the baseline; at the limit (refused TOO_LARGE): p50 {r['at_limit_p50']:.2f}x, "
        f"p99 {r['at_limit_p99']:.2f}x"
    )
    print_figures_line(figures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.oversize")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, default=FRAME_LIMIT + 1, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "abuser":
        print(json.dumps(abuse(args.frontend, args.bytes, args.seconds)), flush=True)
        return
    report(run(args.quick))


if __name__ == "__main__":
    main()
