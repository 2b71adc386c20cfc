"""The socket size limit at its boundary: one byte over drops that peer alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import zmq
from exchange_support import running_exchange, wait_until
from test_ps_processes import start_shard, write_ps_app
from test_ps_shards import clients

from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config, parse_config
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode
from relaax_zmq.ps import load_spec
from relaax_zmq.ps.wire import MAX_FRAME_BYTES
from relaax_zmq.runtime.sockets import (
    ADMIN_MAX_MESSAGE_BYTES,
    METRICS_MAX_MESSAGE_BYTES,
    open_socket,
    socket_map,
)


def test_one_byte_over_the_frontend_limit_drops_only_that_client(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"max_message_bytes": 65536}) as ex:
        limit = socket_map(load_config(ex.config))["broker.frontend"].frame_limit
        ctx = zmq.Context()
        good = AgentProxy(ex.frontend)
        good.init()
        at, over = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        try:
            for sock in (at, over):
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(ex.frontend)
            header = encode(messages.init())[0]
            at.send_multipart([header, b"\0" * limit])  # at the limit: answered
            assert at.poll(5000), "a frame at the limit gets an answer"
            code, _, _ = messages.read_error(decode(at.recv_multipart()))
            assert code in (ErrorCode.TOO_LARGE, ErrorCode.MALFORMED)
            over.send_multipart([header, b"\0" * (limit + 1)])  # one byte over: dropped
            assert not over.poll(1000), "ZeroMQ drops the peer instead of answering"
            assert int(good.update(state=np.zeros(4, np.float32))) in (0, 1)
            at.send_multipart(encode(messages.init()))  # the client at the limit goes on
            assert at.poll(5000)
            assert ex.broker.proc.poll() is None
        finally:
            at.close()
            over.close()
            good.disconnect()
            ctx.term()


def test_every_socket_lets_zeromq_drop_frames_above_twice_the_largest_legal_message() -> None:
    config = parse_config(
        {"version": 1, "environment": {"run": "bandit"}, "algorithm": {"name": "da3c"}}
    )
    specs = socket_map(config)
    legal = {
        "broker.frontend": config.protocol.max_message_bytes,
        "broker.admin": ADMIN_MAX_MESSAGE_BYTES,
        "ps[0].gradients": MAX_FRAME_BYTES,
        "worker.ps[0].weights": MAX_FRAME_BYTES,
        "metrics.collector": METRICS_MAX_MESSAGE_BYTES,
    }
    for name, size in legal.items():
        assert specs[name].max_message_bytes == size, name
    ctx = zmq.Context()
    try:
        for spec in specs.values():
            assert spec.frame_limit == 2 * spec.max_message_bytes, spec.name
            sock = open_socket(ctx, replace(spec, endpoint=f"inproc://{spec.name}", bind=True))
            try:
                assert sock.getsockopt(zmq.MAXMSGSIZE) == spec.frame_limit, spec.name
            finally:
                sock.close(0)
    finally:
        ctx.term()


def test_a_frame_above_the_shard_limit_drops_only_that_pusher(tmp_path) -> None:
    path, config = write_ps_app(tmp_path, 1)
    spec = load_spec(config)
    assert spec is not None
    limit = socket_map(config)["ps[0].gradients"].frame_limit
    daemon = start_shard(path, 0)
    ctx = zmq.Context()
    rogue = ctx.socket(zmq.PUSH)
    try:
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.connect(config.parameter_servers.gradients_endpoint(0))
        with clients(config, "w0", count=spec.param_count) as (client,):
            assert client.wait_consistent(20), daemon.output()
            # twice the largest legal frame: the shard's decoder refuses it, named
            rogue.send_multipart([b"RXPS", b"\0" * limit])
            # one byte more: ZeroMQ drops the pusher before the shard sees it
            rogue.send_multipart([b"RXPS", b"\0" * (limit + 1)])
            grad = np.ones(spec.param_count, np.float32)
            _, versions, _ = client.weights()
            assert client.push(grad, list(versions), steps=1, episodes=0) == 1
            assert client.wait_consistent(10, newer_than=int(versions[0])), daemon.output()
        # under load the 8 MB frame can trail the push: wait for its log line before stopping
        wait_until(lambda: "dropped a message" in daemon.output(), 20, "the refused frame's log")
        assert daemon.proc.poll() is None, daemon.output()
        assert daemon.stop() == 0
        # the frame at the limit was refused by the decoder; the one above never arrived
        assert daemon.output().count("dropped a message") == 1, daemon.output()
    finally:
        rogue.close(0)
        ctx.term()
        if daemon.proc.poll() is None:
            daemon.kill9()
