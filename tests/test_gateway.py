"""The WebSocket gateway with a real broker and worker: sessions through it, and every
refusal (origin, token, subprotocol, path, sizes, malformed envelopes, text, floods,
slow readers) closing or slowing the offender alone."""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from exchange_support import start_daemon, status, wait_until
from gateway_support import TOKEN, GatewayApp, decode_reply, open_ws, request, running_gateway, step
from websockets.exceptions import ConnectionClosed, InvalidStatus

from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.client.websocket import WebSocketConnection
from relaax_zmq.errors import AgentError, EpisodeRestart
from relaax_zmq.gateway import pack
from relaax_zmq.protocol import ErrorCode, MessageType, encode, messages
from relaax_zmq.protocol.messages import read_error

MAX_BYTES = 64 << 10


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayApp]:
    folder = tmp_path_factory.mktemp("gateway")
    static = folder / "site"
    static.mkdir()
    (static / "index.html").write_text("<title>cartpole</title>")
    (folder / "secret.txt").write_text("outside the site")
    settings = {
        "token": TOKEN,
        "static_dir": str(static),
        "max_message_bytes": MAX_BYTES,
        "origins": ["https://games.example"],
        "rate_limit": 2000.0,
        "rate_burst": 200,
        "send_timeout": 1.0,
    }
    with running_gateway(folder, **settings) as running:
        yield running


def test_a_session_steps_through_the_gateway_like_any_client(app: GatewayApp) -> None:
    with open_ws(app.url) as ws:
        assert ws.subprotocol == "rlx.v1"
        ready = request(ws, messages.init(sequence=7, session_count=2))
        assert (ready.type, ready.sequence, ready.session_count) == (MessageType.READY, 7, 2)
        states = np.zeros((2, 4), np.float32)
        reply = request(ws, messages.update(ready.session_id, state=states, sequence=8))
        assert reply.type == MessageType.ACTION and reply.sequence == 8
        assert reply.tensors[4].shape == (2,)  # one action per session of the block
        blocks = status(app.exchange.admin)["sessions"]
        assert blocks["sessions"] >= 2
    # the connection's blocks are closed at the broker when it goes away
    wait_until(
        lambda: status(app.exchange.admin)["sessions"]["sessions"] == 0, 5, "its block closed"
    )
    assert app.counters()["blocks_closed"] >= 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"token": None}, 401),
        ({"token": "wrong-token-0123456789"}, 401),
        ({"origin": "https://evil.example"}, 403),
    ],
)
def test_the_handshake_refuses_a_missing_token_and_a_foreign_origin(
    app: GatewayApp, kwargs: dict, code: int
) -> None:
    token = kwargs.pop("token", TOKEN)
    with pytest.raises(InvalidStatus) as caught:
        open_ws(app.url, token, **kwargs)
    assert caught.value.response.status_code == code


def test_allowed_origins_and_the_gateways_own_pages_connect(app: GatewayApp) -> None:
    for origin in ("https://games.example", f"http://127.0.0.1:{app.port}"):
        with open_ws(app.url, origin=origin) as ws:
            assert (
                request(ws, messages.simple(MessageType.HEARTBEAT, 0, 0, sequence=3)).sequence == 3
            )


def test_a_wrong_path_or_subprotocol_is_refused(app: GatewayApp) -> None:
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as caught:
        open_ws(app.url.replace("/rlx", "/other"))
    assert caught.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as caught:
        connect(app.url, subprotocols=[f"rlx-token.{TOKEN}"])
    assert caught.value.response.status_code == 400
    refused = app.counters()["refused"]
    assert refused["path"] >= 1 and refused["subprotocol"] >= 1


def test_too_large_is_answered_and_twice_the_limit_closes_the_connection(app: GatewayApp) -> None:
    with open_ws(app.url) as ws:
        ready = request(ws, messages.init(sequence=1))
        big = np.zeros((1, MAX_BYTES // 4 + 16), np.float32)
        reply = request(ws, messages.update(ready.session_id, state=big, sequence=2))
        code, text, _ = read_error(reply)
        assert (code, reply.sequence) == (ErrorCode.TOO_LARGE, 2)
        assert f"expected at most {MAX_BYTES} bytes" in text
        assert step(ws, ready.session_id, 3).type == MessageType.ACTION  # still open
        huge = np.zeros((1, MAX_BYTES // 2 + 256), np.float32)  # 2x the limit + 1 KiB
        ws.send(pack(encode(messages.update(ready.session_id, state=huge, sequence=4))))
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(5)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009


def test_a_connection_that_keeps_sending_too_much_is_closed(app: GatewayApp) -> None:
    """Each refusal costs it as the broker charges its peers; once spent: closed (1008)."""
    with open_ws(app.url) as ws:
        big = np.zeros((1, MAX_BYTES // 4 + 16), np.float32)
        answers = 0
        with pytest.raises(ConnectionClosed) as caught:
            for sequence in range(1, 40):
                ws.send(pack(encode(messages.update(7, state=big, sequence=sequence))))
                assert read_error(decode_reply(ws.recv(5)))[0] == ErrorCode.TOO_LARGE
                answers += 1
        assert caught.value.rcvd.code == 1008 and "refusal budget" in caught.value.rcvd.reason
        assert 3 <= answers < 20
    assert app.counters()["closed"]["refusals"] >= 1


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (struct.pack("<II", 1, 40) + b"\0" * 8, 1002, "envelope.size"),
        ("init", 1003, "text message"),
    ],
)
def test_a_malformed_envelope_or_text_closes_that_connection_alone(
    app: GatewayApp, payload: bytes | str, code: int, reason: str
) -> None:
    with open_ws(app.url) as bystander, open_ws(app.url) as ws:
        session = request(bystander, messages.init(sequence=1)).session_id
        ws.send(payload)
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(5)
        assert caught.value.rcvd.code == code and reason in caught.value.rcvd.reason
        assert step(bystander, session, 2).type == MessageType.ACTION


def test_a_flood_is_slowed_to_its_budget_while_others_keep_stepping(app: GatewayApp) -> None:
    """A connection sending without reading: the gateway stops reading it at the in-flight
    limit and the rate limit, so its sends block; another session steps meanwhile."""
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        sock = socket.create_connection(("127.0.0.1", app.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        with contextlib.suppress(ConnectionClosed), open_ws(app.url, sock=sock) as ws:
            session = request(ws, messages.init(sequence=1)).session_id
            data = pack(encode(messages.update(session, state=np.zeros((1, 4), np.float32))))
            ws.socket.settimeout(0.5)
            while not stop.is_set():
                try:
                    ws.send(data)
                except (TimeoutError, OSError):
                    continue
                sent[0] += 1

    thread = threading.Thread(target=flood, daemon=True)
    before = app.counters()
    thread.start()
    try:
        with open_ws(app.url) as ws:
            session = request(ws, messages.init(sequence=1)).session_id
            time.sleep(1.0)
            started = time.monotonic()
            for i in range(200):
                assert step(ws, session, i + 2).type == MessageType.ACTION
            stepping = time.monotonic() - started
    finally:
        stop.set()
        thread.join(10)
    after = app.counters()
    assert stepping < 10, f"200 steps took {stepping:.1f} s beside the flood"
    assert after["throttled_s"] > before["throttled_s"] or (
        after["in_flight_waits"] > before["in_flight_waits"]
    )
    assert after["requests"] - before["requests"] < 2000 * 3 + 200 + 400  # its rate, no more


def test_a_client_that_reads_no_replies_is_closed(app: GatewayApp) -> None:
    """Updates of a 64-session block whose actions (512 B each) are never read: the
    buffers fill, the gateway's write waits, and after send_timeout it drops the client."""
    before = app.counters()
    stop = threading.Event()
    with open_ws(app.url) as ws:
        ready = request(ws, messages.init(sequence=1, session_count=64))
        assert ready.type == MessageType.READY
        states = np.zeros((64, 4), np.float32)

        def send_without_reading() -> None:
            with contextlib.suppress(ConnectionClosed, OSError):
                for sequence in itertools.count(2):
                    if stop.is_set():
                        return
                    update = messages.update(ready.session_id, state=states, sequence=sequence)
                    ws.send(pack(encode(update)))

        threading.Thread(target=send_without_reading, daemon=True).start()
        try:
            slow = before["closed"].get("slow_reader", 0)
            wait_until(
                lambda: app.counters()["closed"].get("slow_reader", 0) > slow, 20, "the close"
            )
            wait_until(
                lambda: app.counters()["connections_open"] <= before["connections_open"],
                10,
                "its end",
            )
        finally:
            stop.set()
            ws.socket.close()
    assert app.gateway.proc.poll() is None


def test_python_clients_take_the_gateway_url_and_its_token(app: GatewayApp) -> None:
    with VectorAgentProxy(app.url, 3, token=TOKEN) as block:
        block.init()
        actions = block.update(None, np.zeros((3, 4), np.float32))
        assert actions.shape == (3,) and set(actions) <= {0, 1}
    with pytest.raises(AgentError) as caught:
        AgentProxy(app.url, token="wrong-token-0123456789").init()
    assert caught.value.code == ErrorCode.AUTH and "401" in str(caught.value)


def test_files_are_served_and_nothing_outside_the_folder(app: GatewayApp) -> None:
    base = f"http://127.0.0.1:{app.port}"
    with urllib.request.urlopen(f"{base}/") as page:
        assert page.read() == b"<title>cartpole</title>"
    with urllib.request.urlopen(f"{base}/client/index.js") as module:
        assert module.headers["Content-Type"] == "text/javascript"
        assert b"AgentProxy" in module.read()
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/missing.html"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + path)
        assert caught.value.code == 404


def test_sigterm_closes_connections_and_clients_resume_after_a_restart(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as app, open_ws(app.url, token=None) as ws:
        session = request(ws, messages.init(sequence=1)).session_id
        assert step(ws, session, 2).type == MessageType.ACTION
        proxy = AgentProxy(app.url, request_timeout=2.0, backoff_initial=0.05)
        proxy.init()
        state = np.zeros(4, np.float32)
        proxy.update(state=state)
        assert app.gateway.stop() == 0
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(5)
        assert caught.value.rcvd.code == 1001
        wait_until(
            lambda: status(app.exchange.admin)["sessions"]["sessions"] == 0, 5, "blocks closed"
        )
        app.gateway = start_daemon("gateway", "relaax_zmq.gateway", app.exchange.config)
        with pytest.raises(EpisodeRestart):  # its block was closed: a new one, a new episode
            proxy.update(reward=1.0, state=state)
        assert proxy.update(state=state) in (0, 1)
        proxy.disconnect()


def test_a_silent_connection_is_closed_going_away(tmp_path: Path) -> None:
    with running_gateway(tmp_path, idle_timeout=0.5) as app, open_ws(app.url, token=None) as ws:
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(5)
        assert caught.value.rcvd.code == 1001 and "idle" in caught.value.rcvd.reason
        assert app.counters()["closed"]["idle"] == 1


def test_wss_serves_tls_directly(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    with running_gateway(tmp_path, tls_cert=str(cert), tls_key=str(key)) as app:
        trusted = ssl.create_default_context(cafile=str(cert))
        url = app.url
        assert url.startswith("wss://")
        connection = WebSocketConnection(url, ssl_context=trusted)
        with AgentProxy(url, connection=connection) as agent:
            agent.init()
            assert agent.update(state=np.zeros(4, np.float32)) in (0, 1)
        with pytest.raises(AgentError, match="CERTIFICATE_VERIFY_FAILED"):  # not trusted
            AgentProxy(url, retry_deadline=0.5).init()
