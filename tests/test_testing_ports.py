"""Free loopback ports for tests: never the same port twice in one process."""

from __future__ import annotations

import socket

from relaax_zmq.runtime.ports import (
    PORT_FLOOR,
    ephemeral_floor,
    free_port,
    free_port_range,
    on_free_ports,
)


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_a_port_range_does_not_overlap_single_ports_or_other_ranges() -> None:
    singles = {free_port() for _ in range(50)}
    ranges = [free_port_range(4) for _ in range(50)]
    taken = [p + i for p in ranges for i in range(4)]
    assert len(set(taken)) == len(taken)
    assert not singles & set(taken)


def test_ports_come_from_below_the_ephemeral_range() -> None:
    """No outgoing connection can take a handed-out port before its daemon binds it."""
    floor = ephemeral_floor()
    assert floor > PORT_FLOOR
    assert all(PORT_FLOOR <= free_port() < floor for _ in range(200))
    assert all(PORT_FLOOR <= p and p + 8 <= floor for p in (free_port_range(8) for _ in range(50)))


def test_the_ephemeral_floor_is_the_kernels(tmp_path, monkeypatch) -> None:
    import relaax_zmq.runtime.ports as ports

    fake = tmp_path / "ip_local_port_range"
    fake.write_text("40000\t60999\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", fake)
    assert ports.ephemeral_floor() == 40000
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports.ephemeral_floor() == 32768


def test_a_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_an_app_on_free_ports_has_every_endpoint_distinct() -> None:
    for _ in range(100):
        app = on_free_ports({"parameter_servers": {"shards": 3}})
        ports = [int(app["broker"][k].rsplit(":", 1)[1]) for k in ("frontend", "backend", "admin")]
        ports.append(int(app["metrics"]["endpoint"].rsplit(":", 1)[1]))
        endpoints = app["parameter_servers"]["endpoints"]
        for base in (endpoints["gradients_port"], endpoints["weights_port"]):
            ports.extend(base + i for i in range(3))
        assert len(set(ports)) == len(ports), ports
