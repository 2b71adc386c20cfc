"""A burst of clients connecting at once: the listen backlog of a bound socket.

Run: ``python -m bench.connect [--clients N] [--rounds R]``. N DEALERs (one thread, one
context, as a client process holding many sessions does) connect to a ROUTER on tcp
loopback and each sends one message at once; the figure is the time until the ROUTER
has read all N, and the kernel's listen overflows meanwhile (``ListenOverflows`` of
/proc/net/netstat: SYNs dropped because the accept queue was full; each costs its
client TCP's retransmit, 1 s and then 3 s, 7 s ...). Two ROUTERs, same run:

- ``zmq_default``: ZeroMQ's default ``ZMQ_BACKLOG`` (100) - the baseline;
- ``open_socket``: the exchange's ``broker.frontend`` spec (``LISTEN_BACKLOG``).

It prints the median and worst of R rounds of each, the ratio, and ends with one JSON
line of the figures. The overflow counter is machine-wide: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import zmq

from bench.timing import exit_on_sigterm, print_figures_line, table
from relaax_zmq.config import load_config
from relaax_zmq.runtime.sockets import LISTEN_BACKLOG, open_socket, socket_map

NETSTAT = Path("/proc/net/netstat")
#: The main job's config: its broker frontend spec is the one measured.
MAIN_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "cartpole.yaml"


def listen_overflows() -> int:
    """The kernel's count of connections dropped on full accept queues (all sockets)."""
    lines = NETSTAT.read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters["ListenOverflows"])
    raise RuntimeError(f"no TcpExt ListenOverflows in {NETSTAT}")


def frontend_router(context: zmq.Context) -> tuple[zmq.Socket, str]:
    """A ROUTER made by ``open_socket`` from the broker's frontend spec, on a free port."""
    spec = replace(
        socket_map(load_config(MAIN_CONFIG))["broker.frontend"], endpoint="tcp://127.0.0.1:*"
    )
    sock = open_socket(context, spec)
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)


def default_router(context: zmq.Context) -> tuple[zmq.Socket, str]:
    """A ROUTER with ZeroMQ's defaults, on a free port."""
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return sock, f"tcp://127.0.0.1:{port}"


def burst(router: zmq.Socket, endpoint: str, clients: int, timeout: float = 30.0) -> dict:
    """``clients`` DEALERs connect to ``endpoint`` and send one message each: seconds
    until ``router`` read them all, listen overflows meanwhile, messages read."""
    context = zmq.Context()
    dealers = []
    before = listen_overflows()
    start = time.monotonic()
    try:
        for _ in range(clients):
            dealer = context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(endpoint)
            dealer.send(b"hello")
            dealers.append(dealer)
        read, deadline = 0, start + timeout
        while read < clients and router.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            router.recv_multipart()
            read += 1
        seconds = time.monotonic() - start
        return {"seconds": seconds, "overflows": listen_overflows() - before, "read": read}
    finally:
        for dealer in dealers:
            dealer.close()
        context.term()


def measure(
    make: Callable[[zmq.Context], tuple[zmq.Socket, str]], clients: int, rounds: int
) -> dict[str, float]:
    """``rounds`` bursts against a fresh router from ``make`` each: median and worst."""
    results = []
    for _ in range(rounds):
        context = zmq.Context()
        router, endpoint = make(context)
        try:
            results.append(burst(router, endpoint, clients))
        finally:
            router.close()
            context.term()
    if any(r["read"] < clients for r in results):
        raise RuntimeError(f"a burst lost messages: {results}")
    seconds = [r["seconds"] for r in results]
    return {
        "median_s": statistics.median(seconds),
        "worst_s": max(seconds),
        "overflows_per_round": statistics.mean(r["overflows"] for r in results),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    figures = {
        "zmq_default": measure(default_router, args.clients, args.rounds),
        "open_socket": measure(frontend_router, args.clients, args.rounds),
    }
    base, ours = figures["zmq_default"], figures["open_socket"]
    figures["ratio"] = {
        "median": ours["median_s"] / base["median_s"],
        "worst": ours["worst_s"] / base["worst_s"],
    }
    print(f"{args.clients} DEALERs connecting at once, {args.rounds} rounds each")
    rows = [["router", "backlog", "median s", "worst s", "listen overflows/round"]]
    for name, backlog in (("zmq_default", 100), ("open_socket", LISTEN_BACKLOG)):
        f = figures[name]
        rows.append(
            [
                name,
                str(backlog),
                f"{f['median_s']:.3f}",
                f"{f['worst_s']:.3f}",
                f"{f['overflows_per_round']:.0f}",
            ]
        )
    print(table(rows))
    print(
        f"open_socket / zmq_default: median {figures['ratio']['median']:.3f}x, "
        f"worst {figures['ratio']['worst']:.3f}x"
    )
    print_figures_line(figures, digits=3)


if __name__ == "__main__":
    exit_on_sigterm()
    main()
