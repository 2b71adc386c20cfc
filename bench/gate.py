"""The per-message cost of refusing revoked keys on live CURVE connections (``PeerGate``).

Run: ``python -m bench.gate``. A CURVE ROUTER (the ``broker.frontend`` spec) reads one RLX
update from a CURVE DEALER; then, on that received frame, in the same run:

- ``gate``: ``PeerGate.refusal`` (the ``User-Id`` metadata lookup and the cached verdict),
  what a CURVE server now does for every message it reads;
- ``peek``: ``protocol.envelope.peek`` of the same message, the least the broker does with
  any request (the baseline).

It prints both per message and their ratio, and ends with one JSON line of the figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import zmq

from bench.timing import best_seconds, print_figures_line, table
from relaax_zmq.config import parse_config
from relaax_zmq.protocol import encode, messages
from relaax_zmq.protocol.envelope import peek
from relaax_zmq.runtime.ports import on_free_ports
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.security import ROLES, generate, peer_gate


def curve_frontend(keys: Path):
    """The CURVE app config on free loopback ports with every role's key in ``keys``."""
    for role in ROLES:
        generate(keys, role)
    app = {
        "version": 1,
        "environment": {"run": "bandit"},
        "algorithm": {"name": "reinforce"},
        "security": {"curve": True, "keys_dir": str(keys)},
    }
    return parse_config(on_free_ports(app))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = curve_frontend(Path(folder) / "keys")
        specs = socket_map(config)
        context = zmq.Context()
        server = open_socket(context, specs["broker.frontend"])
        client = open_socket(context, specs["client.frontend"])
        try:
            update = messages.update(1, state=np.zeros((1, 4), np.float32))
            client.send_multipart(encode(update))
            if not server.poll(5000):
                raise RuntimeError("no message over CURVE in 5 s")
            frames = server.recv_multipart(copy=False)
            gate = peer_gate(context, "broker.frontend", specs["broker.frontend"].curve)
            assert gate is not None and gate.refusal(frames[-1]) is None
            limits = config.protocol.limits()
            figures = {
                "gate_us": best_seconds(lambda: gate.refusal(frames[-1])) * 1e6,
                "peek_us": best_seconds(lambda: peek(frames[1:], limits)) * 1e6,
            }
        finally:
            client.close(0)
            server.close(0)
            context.term()
    figures["ratio"] = figures["gate_us"] / figures["peek_us"]
    print("per message read by a CURVE server")
    print(
        table(
            [
                ["check", "us per message"],
                ["PeerGate.refusal (revoked keys)", f"{figures['gate_us']:.3f}"],
                ["peek of the RLX header (baseline)", f"{figures['peek_us']:.3f}"],
            ]
        )
    )
    print(f"gate / peek: {figures['ratio']:.2f}x")
    print_figures_line({"gate": figures}, digits=3)


if __name__ == "__main__":
    main()
