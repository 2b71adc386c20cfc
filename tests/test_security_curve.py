"""CURVE + ZAP over real tcp sockets and daemons: allow-listed keys in, everyone else out."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from exchange_support import start_daemon, wait_until, write_app
from security_support import curve_config, curve_dealer, handshake_events, make_keys

from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config
from relaax_zmq.core import OptimizerSpec, ParameterServerSpec
from relaax_zmq.metrics import MetricsSender
from relaax_zmq.metrics.collector import Collector
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, MessageType
from relaax_zmq.runtime.admin_client import AdminError, admin_curve, broker_status, live_workers
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.identity import host_name
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.security import generate, load_key_pair, load_public_key, revoke

#: how a handshake can fail (a NULL peer sees its server hang up or a mechanism mismatch)
FAILED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
}


def refused(events: set[int]) -> bool:
    """The handshake failed and never succeeded."""
    return bool(events & FAILED) and zmq.EVENT_HANDSHAKE_SUCCEEDED not in events


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def test_socket_map_puts_curve_on_every_socket_off_the_host(tmp_path: Path) -> None:
    config = curve_config(make_keys(tmp_path), key_names={"worker": "host3"})
    specs = socket_map(config)
    assert all(s.curve is not None for s in specs.values())
    roles = {n: (s.curve.role, s.curve.admit or s.curve.server_role) for n, s in specs.items()}
    assert roles["broker.frontend"] == ("broker", ("client",))
    assert roles["broker.backend"] == ("broker", ("worker",))
    assert roles["broker.admin"] == ("broker", ("admin",))
    # a central learner pushes gradients and reads weights with its own key
    assert roles["ps[0].gradients"] == roles["ps[0].weights"] == ("shard", ("learner", "worker"))
    assert roles["learner.ps[0].gradients"] == ("learner", "shard")
    assert roles["learner[0].unrolls"] == ("learner", ("worker",))
    assert roles["replay[0].insert"] == ("replay", ("worker",))
    assert roles["replay[0].sample"] == ("replay", ("learner",))
    assert roles["learner.replay[0]"] == ("learner", "replay")
    assert roles["metrics.collector"] == (
        "metrics", ("client", "learner", "replay", "shard", "worker"),
    )  # fmt: skip
    assert roles["worker.ps[0].weights"] == ("worker", "shard")
    assert roles["ps.metrics"] == ("shard", "metrics")
    assert roles["admin.client"] == ("admin", "broker")
    assert specs["worker.backend"].curve.name == "host3"
    assert all(s.curve is None for s in socket_map(config, inproc=True).values())


def test_shard_sockets_admit_workers_only(tmp_path: Path, context: zmq.Context) -> None:
    keys = make_keys(tmp_path)
    specs = socket_map(curve_config(keys))
    pull = open_socket(context, specs["ps[0].gradients"])
    pub = open_socket(context, specs["ps[0].weights"])
    push = open_socket(context, specs["worker.ps[0].gradients"])
    sub = open_socket(context, specs["worker.ps[0].weights"])
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    push.send(b"slice")
    assert pull.poll(2000) and pull.recv() == b"slice"
    # a client's key is valid but not a worker's: refused like a stranger
    as_client = dataclasses.replace(
        specs["worker.ps[0].gradients"],
        curve=dataclasses.replace(
            specs["worker.ps[0].gradients"].curve, role="client", name="client"
        ),
    )
    intruder = open_socket(context, as_client)
    assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in handshake_events(intruder)
    plain = context.socket(zmq.SUB)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    assert refused(handshake_events(plain, specs["ps[0].weights"].endpoint))
    wait_until(lambda: pub.send(b"weights") or sub.poll(50), 5, "the worker's subscription")
    assert sub.recv() == b"weights" and not plain.poll(200)
    intruder.send(b"forged", zmq.NOBLOCK) if intruder.poll(0, zmq.POLLOUT) else None
    assert not pull.poll(300), "nothing from the refused peer"


@contextmanager
def running_collector(config: Any, context: zmq.Context) -> Iterator[Collector]:
    """The metrics collector of ``config`` serving in a thread, ready; stopped afterwards."""
    collector = Collector(config, context=context)
    stop = StopFlag()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    try:
        assert collector.ready.wait(5)
        yield collector
    finally:
        stop.set()
        thread.join(10)


def test_metrics_collector_records_allowed_senders_only(tmp_path: Path, context) -> None:
    keys = make_keys(tmp_path)
    config = curve_config(keys)
    with running_collector(config, context) as collector:
        plain = context.socket(zmq.PUSH)
        assert refused(handshake_events(plain, str(config.metrics.endpoint)))
        plain.close(0)
        with MetricsSender.from_config(config, "ps-0", context=context) as sender:
            assert sender._socket is not None
            assert sender._socket.getsockopt(zmq.MECHANISM) == zmq.CURVE
            sender.scalar("loss", 1.0, step=1)
            sender.flush()
            wait_until(lambda: collector.stats()["received"] == 1, 5, "the shard's batch")
    assert collector.stats()["received"] == 1 and collector.stats()["malformed"] == 0


def _served(sock: zmq.Socket, timeout: float = 2.0) -> bool:
    try:
        sock.send_multipart(encode(messages.init()), zmq.NOBLOCK)
    except zmq.Again:  # no connection took the message: nobody can serve it
        return False
    if not sock.poll(int(timeout * 1000)):
        return False
    return decode(sock.recv_multipart()).type in (MessageType.READY, MessageType.ERROR)


@dataclasses.dataclass
class CurveExchange:
    """A broker and worker ``w0`` serving over CURVE (see ``curve_exchange``)."""

    config: Any
    endpoints: dict[str, str]
    admin: Any  # the admin.client CurveSpec
    broker: Any
    worker: Any
    ctx: zmq.Context


@contextmanager
def curve_exchange(tmp_path: Path, keys: Path, **broker: Any) -> Iterator[CurveExchange]:
    """Broker and worker daemons with CURVE on (keys in ``keys``, reload every 0.1 s; ``broker``
    updates the broker section), once the worker is registered; stopped afterwards."""
    sections: dict[str, Any] = {"broker": broker} if broker else {}
    security = {"curve": True, "keys_dir": str(keys), "reload_interval": 0.1}
    app, endpoints = write_app(tmp_path, security=security, **sections)
    config = load_config(app)
    admin = admin_curve(config)
    broker_daemon = start_daemon("broker", "relaax_zmq.broker", app)
    worker = start_daemon("w0", "relaax_zmq.worker", app, "--name", "w0")
    ctx = zmq.Context()
    try:
        wait_until(lambda: live_workers(endpoints["admin"], curve=admin), 30, "a worker over CURVE")
        yield CurveExchange(config, endpoints, admin, broker_daemon, worker, ctx)
    finally:
        ctx.destroy(linger=0)
        worker.stop()
        broker_daemon.stop()


def test_curve_broker_and_worker_serve_allowed_keys_and_refuse_others(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    alice = generate(keys, "client", "alice")
    with curve_exchange(tmp_path, keys) as ex:
        config, endpoints, ctx = ex.config, ex.endpoints, ex.ctx
        broker, worker = ex.broker, ex.worker
        with pytest.raises(AdminError, match="no reply"):  # no admin key: no status
            broker_status(endpoints["admin"], timeout=0.5)
        proxy = AgentProxy.from_config(config)
        proxy.init()
        assert int(proxy.update(state=np.zeros(4, np.float32))) in (0, 1)  # served, encrypted
        server = load_public_key(keys, "broker", "broker")
        front = endpoints["frontend"]
        plain = curve_dealer(ctx, front, None, server)
        assert refused(handshake_events(plain, front))
        assert not _served(plain, 0.5)
        stranger = curve_dealer(ctx, front, zmq.curve_keypair(), server)
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in handshake_events(stranger, front)
        assert not _served(stranger, 0.5)
        stolen = load_key_pair(keys, "client", "alice")
        before = curve_dealer(ctx, front, stolen, server)
        before.connect(front)
        assert _served(before)
        revoke(keys, "client", "alice")
        time.sleep(0.3)  # > security.reload_interval: the broker looks at the files again
        after = curve_dealer(ctx, front, stolen, server)
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in handshake_events(after, front)
        assert not _served(after, 0.5)
        assert int(proxy.update(state=np.zeros(4, np.float32))) in (0, 1)  # others go on
        proxy.disconnect()
        assert broker.proc.poll() is None and worker.proc.poll() is None
        log = broker.output()
        assert "revoked key " + alice.public_key in log and "unknown key" in log


@pytest.mark.parametrize("problem", ["mode", "missing"])
def test_curve_daemons_refuse_to_start_without_safe_keys(tmp_path: Path, problem: str) -> None:
    keys = make_keys(tmp_path)
    secret = keys / "broker" / "broker.key_secret"
    if problem == "mode":
        os.chmod(secret, 0o640)
    else:
        secret.unlink()
    app, _ = write_app(tmp_path, security={"curve": True, "keys_dir": str(keys)})
    broker = start_daemon("broker", "relaax_zmq.broker", app)
    try:
        assert broker.proc.wait(30) == 1
    finally:
        broker.stop()
    out = broker.output()
    assert str(secret) in out
    assert ("mode 0640" in out and "0600" in out) if problem == "mode" else "missing" in out


def _answer(sock: zmq.Socket, message, timeout: float = 2.0):
    """Send ``message`` on ``sock``; the decoded reply (None if none came)."""
    sock.send_multipart(encode(message))
    if not sock.poll(int(timeout * 1000)):
        return None
    return decode(sock.recv_multipart())


def test_keys_revoked_while_connected_are_refused_from_their_next_message(tmp_path: Path) -> None:
    """CURVE judges a connection at its handshake; a key revoked later is refused on the
    connection it already has too: a client's requests get AUTH, a worker is dropped at once
    (not after the liveness timeout) and its blocks go elsewhere; other keys go on."""
    keys = make_keys(tmp_path)
    alice_key = generate(keys, "client", "alice").public_key
    generate(keys, "admin", "ops")  # an operator's key, revoked below (the default one stays)
    liveness = {"heartbeat_interval": 0.5, "heartbeat_liveness": 20}  # death takes 10 s
    with curve_exchange(tmp_path, keys, **liveness) as ex:
        config, endpoints, ctx = ex.config, ex.endpoints, ex.ctx
        broker, admin = ex.broker, ex.admin
        server = load_public_key(keys, "broker", "broker")
        alice = curve_dealer(
            ctx, endpoints["frontend"], load_key_pair(keys, "client", "alice"), server
        )
        alice.connect(endpoints["frontend"])
        ready = _answer(alice, messages.init(), 5.0)
        assert ready is not None and ready.type == MessageType.READY
        state = np.zeros((1, 4), np.float32)
        update = messages.update(ready.session_id, state=state)
        assert _answer(alice, update).type == MessageType.ACTION
        proxy = AgentProxy.from_config(config)  # the default client key: not revoked
        proxy.init()

        revoke(keys, "client", "alice")
        refusals: list = []

        def refused_auth() -> bool:
            reply = _answer(alice, messages.update(ready.session_id, state=state), 0.5)
            if reply is not None and reply.type == MessageType.ERROR:
                refusals.append(messages.read_error(reply))
            return bool(refusals)

        started = time.monotonic()
        wait_until(refused_auth, 10, "alice's requests refused")
        code, text, _ = refusals[0]
        assert code == ErrorCode.AUTH and f"revoked key {alice_key}" in text, (code, text)
        print(f"alice refused {time.monotonic() - started:.2f} s after the revocation")
        assert int(proxy.update(state=np.zeros(4, np.float32))) in (0, 1)  # others go on

        # an admin connection opened before its key is revoked gets errors, not the status
        operator = curve_dealer(
            ctx, endpoints["admin"], load_key_pair(keys, "admin", "ops"), server
        )
        operator.connect(endpoints["admin"])

        def ask_status() -> dict:
            operator.send(b'{"command": "status"}')
            assert operator.poll(5000), "no admin reply"
            return json.loads(operator.recv())

        assert ask_status()["ok"] is True
        revoke(keys, "admin", "ops")
        wait_until(lambda: not ask_status()["ok"], 10, "the admin connection refused")
        assert "revoked key" in ask_status()["error"]

        revoke(keys, "worker", "worker")  # w0's key
        started = time.monotonic()
        wait_until(lambda: not live_workers(endpoints["admin"], curve=admin), 10, "w0 dropped")
        dropped = time.monotonic() - started
        assert dropped < 5, f"w0 dropped after {dropped:.1f} s: by its key, not by the liveness"
        print(f"w0 dropped {dropped:.2f} s after the revocation")
        counters = broker_status(endpoints["admin"], curve=admin)["counters"]
        assert counters["refused_messages"] >= 3 and counters["errors"]["AUTH"] >= 1, counters
        proxy.disconnect()
        assert broker.proc.poll() is None
        log = broker.output()
        assert f"worker w0@{host_name()} refused (revoked key" in log, log[-3000:]


def test_a_shard_and_the_collector_refuse_keys_revoked_while_connected(
    tmp_path: Path, context: zmq.Context
) -> None:
    """A worker's gradients and a sender's metrics batches stop counting once their key is
    revoked, on the connection they already have (the shard's and the collector's
    ``refused``); before it, both were taken."""
    from test_ps_shards import INITIAL, LR, N, clients, running_shards

    keys = make_keys(tmp_path)
    config = curve_config(keys)
    spec = ParameterServerSpec(
        param_count=N,
        initial_parameters=lambda seed: INITIAL.copy(),
        optimizer=OptimizerSpec("sgd", {"lr": LR}),
    )
    with (
        running_collector(config, context) as collector,
        running_shards(config, spec) as (shard,),
        clients(config, "w0") as (client,),
        MetricsSender.from_config(config, "ps-0", context=context) as sender,
    ):
        assert client.wait_consistent(10)
        assert client.push(np.ones(N, np.float32), [0], steps=1, episodes=0) == 1
        assert client.wait_consistent(5, newer_than=0)
        sender.scalar("loss", 1.0, step=1)
        sender.flush()
        wait_until(lambda: collector.stats()["recorded"] == 1, 5, "the first batch")

        revoke(keys, "worker", "worker")
        revoke(keys, "shard", "shard")  # the sender's key

        def refused() -> bool:
            client.push(np.ones(N, np.float32), [1], steps=1, episodes=0)
            sender.scalar("loss", 2.0, step=2)
            sender.flush()
            time.sleep(0.1)
            return shard.stats()["refused"] >= 1 and collector.stats()["refused"] >= 1

        wait_until(refused, 10, "the revoked keys refused")
        # from then on nothing the revoked keys send counts
        before = shard.stats()
        recorded, batches = collector.stats()["recorded"], collector.stats()["refused"]
        for _ in range(3):
            assert client.push(np.ones(N, np.float32), [0], steps=1, episodes=0) == 1
            sender.scalar("loss", 3.0, step=3)
            sender.flush()
        wait_until(lambda: shard.stats()["refused"] >= before["refused"] + 3, 5, "3 refused")
        assert shard.stats()["version"] == before["version"]
        assert shard.stats()["gradients"] == before["gradients"]
        wait_until(lambda: collector.stats()["refused"] >= batches + 3, 5, "3 batches refused")
        assert collector.stats()["recorded"] == recorded
