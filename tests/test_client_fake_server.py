"""The fake server the client tests rely on behaves like the contract says."""

from __future__ import annotations

import numpy as np
import zmq
from fake_server import FakeServer

from relaax_zmq.protocol import MessageType, Role, decode, encode, messages


def test_fake_server_answers_init_and_update(server: FakeServer) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    try:
        sock.send_multipart(encode(messages.init(2, sequence=5)))
        assert sock.poll(2000)
        ready = decode(sock.recv_multipart())
        assert (ready.type, ready.sequence, ready.session_count) == (MessageType.READY, 5, 2)
        sock.send_multipart(encode(messages.update(ready.session_id, state=np.zeros((2, 3)))))
        assert sock.poll(2000)
        reply = decode(sock.recv_multipart())
        assert reply.type == MessageType.ACTION
        assert reply.tensors[Role.ACTION].shape == (2,)
    finally:
        sock.close(0)
