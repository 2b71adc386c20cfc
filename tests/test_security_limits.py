"""The socket size limit at its boundary: one byte over drops that peer alone."""

from __future__ import annotations

import numpy as np
import zmq
from exchange_support import running_exchange

from relaax_zmq.client import AgentProxy
from relaax_zmq.config import load_config
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode
from relaax_zmq.sockets import socket_map


def test_one_byte_over_the_frontend_limit_drops_only_that_client(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"max_message_bytes": 65536}) as ex:
        limit = socket_map(load_config(ex.config))["broker.frontend"].max_message_bytes
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
