"""Fuzz target ``broker``: the broker's handlers on sequences of client and worker messages.

Each input drives a fresh ``Broker`` in this process: its real ``ClientSide.on_message``
(frontend), ``WorkerLink.on_message`` (backend), liveness tick and admin commands, with
its replies going out over real ROUTER sockets on ``inproc://`` to a DEALER per peer
identity. Two workers register and two clients hold blocks, one request in flight;
then the input is read as up to ``MAX_OPS`` operations: raw frames from a client or a
worker, RLX headers and valid requests naming live or made-up blocks, link control
messages with odd bodies, worker replies to requests in flight (or not), time passing,
admin commands. Properties:

- no exception leaves a handler (the broker answers or drops every bad message itself;
  its loop's last-resort guard is for bugs, and reaching it is a finding);
- after every operation the block table is consistent (sorted starts, no overlap, each
  block on a registered worker and indexed under it) and the counters add up;
- afterwards a new client still gets served end to end by a new worker: init -> ready,
  update -> forwarded -> action, heartbeat, close -> done.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import atheris
import numpy as np
import zmq

from relaax_zmq.broker import admin
from relaax_zmq.broker.broker import Broker
from relaax_zmq.broker.sessions import ID_LIMIT, Block
from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.protocol import decode, encode, link, messages
from relaax_zmq.protocol.constants import MAGIC, MessageType
from relaax_zmq.protocol.header import LAYOUT as HEADER
from relaax_zmq.protocol.link import Command
from relaax_zmq.protocol.message import Message
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.testing import LINEAR_POLICY_PATH

from .frames import Finding, nested, take_frames

#: Operations read from one input at most.
MAX_OPS = 24
CLIENTS = (b"c0", b"c1", b"c2")
WORKERS = (b"w0", b"w1", b"w2")
#: The peers of the final check (no operation uses them).
PROBE_CLIENT, PROBE_WORKER = b"probe-client", b"probe-worker"
#: How long the final check waits for a reply (inproc delivers at once; seconds).
REPLY_WAIT = 2.0
_U64 = (1 << 64) - 1
T = TypeVar("T")

APP = {
    "version": 1,
    "environment": {"run": "bandit"},
    "algorithm": {"path": str(LINEAR_POLICY_PATH), "config": {"actions": 2}},
    "broker": {"heartbeat_interval": 1.0, "session_idle_timeout": 30.0, "rebalance_timeout": 5.0},
}


class Rig:
    """The broker's frontend and backend ROUTERs on inproc and a DEALER for each peer."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.context = zmq.Context()
        specs = socket_map(config, inproc=True)
        self.frontend = open_socket(self.context, specs["broker.frontend"])
        self.backend = open_socket(self.context, specs["broker.backend"])
        self.peers: dict[bytes, zmq.Socket] = {}
        for router, spec, names in (
            (self.frontend, specs["client.frontend"], (*CLIENTS, PROBE_CLIENT)),
            (self.backend, specs["worker.backend"], (*WORKERS, PROBE_WORKER)),
        ):
            for name in names:
                self.peers[name] = open_socket(self.context, spec, identity=name)
                self.peers[name].send(b"hello")
                router.recv_multipart()  # the ROUTER now routes to this identity

    def drain(self) -> None:
        """Forget what the peers were sent so far."""
        for sock in self.peers.values():
            while sock.poll(0):
                sock.recv_multipart()

    def broker(self) -> Broker:
        """A fresh broker replying over the rig's sockets, with repeatable block ids."""
        self.drain()
        broker = Broker(self.config, context=self.context, memory=lambda: 1 << 40)
        broker.out.frontend, broker.out.backend = self.frontend, self.backend
        broker.sessions._randbits = random.Random(0).getrandbits
        return broker

    def receive(self, peer: bytes, skip: Sequence[bytes] = ()) -> list[bytes]:
        """The next message ``peer`` gets whose first frame is not in ``skip``."""
        sock = self.peers[peer]
        deadline = time.monotonic() + REPLY_WAIT
        while sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            frames = sock.recv_multipart()
            if frames[0] not in skip:
                return frames
        raise Finding(f"{peer!r} got no reply")


_RIG: Rig | None = None


def rig() -> Rig:
    global _RIG
    if _RIG is None:
        _RIG = Rig(parse_config(APP))
    return _RIG


def seeds() -> list[bytes]:
    """No seeds: operations are read from any bytes."""
    return []


class Driver:
    """Feeds one broker the operations an input describes."""

    def __init__(self, broker: Broker, fdp: atheris.FuzzedDataProvider) -> None:
        self.broker = broker
        self.fdp = fdp
        self.requests = 0  # client messages handled (the broker's counter must agree)
        self.ops: tuple[Callable[[], None], ...] = (
            self.client_raw,
            self.client_header,
            self.client_request,
            self.worker_raw,
            self.worker_control,
            self.worker_reply,
            self.time_passes,
            self.admin_command,
        )

    # -- sending --------------------------------------------------------------------------

    def client(self, identity: bytes, frames: Sequence[Any]) -> None:
        self.requests += 1
        self.broker.clients.on_message(_zmq_frames(identity, frames))

    def worker(self, identity: bytes, frames: Sequence[Any]) -> None:
        self.broker.link.on_message(_zmq_frames(identity, frames))

    def register(self, identity: bytes, capacity: int) -> None:
        body = {
            "worker": identity.decode(),
            "instance": "fuzz",
            "pid": 1,
            "capacity": capacity,
            "link_version": link.LINK_VERSION,
        }
        self.worker(identity, link.control(Command.REGISTER, **body))

    # -- choices --------------------------------------------------------------------------

    def pick(self, options: Sequence[T]) -> T:
        return options[self.fdp.ConsumeIntInRange(0, len(options) - 1)]

    def blocks(self) -> list[Block]:
        return sorted(self.broker.sessions, key=lambda b: b.id)

    def block_ids(self) -> tuple[int, int]:
        """(session_id, session_count): a live block, inside one, none, or anything."""
        blocks = self.blocks()
        how = self.fdp.ConsumeIntInRange(0, 3)
        if how <= 1 and blocks:
            block = self.pick(blocks)
            inside = self.fdp.ConsumeIntInRange(0, block.count - 1) if how else 0
            return block.id + inside, block.count
        if how == 2:
            return 0, self.fdp.ConsumeIntInRange(0, 4)
        return self.fdp.ConsumeIntInRange(0, _U64), self.fdp.ConsumeIntInRange(0, 0xFFFFFFFF)

    def sequence(self) -> int:
        return self.pick((0, 1, 2, 3, _U64))

    # -- operations -----------------------------------------------------------------------

    def client_raw(self) -> None:
        self.client(self.pick(CLIENTS), take_frames(self.fdp) or [b""])

    def client_header(self) -> None:
        """An RLX header with chosen fields and any frames after it."""
        sid, count = self.block_ids()
        fields = (
            MAGIC if self.fdp.ConsumeBool() else self.fdp.ConsumeBytes(4).ljust(4, b"\0"),
            self.pick((1, 1, 1, 0, 2)),
            self.fdp.ConsumeIntInRange(0, 11),
            self.fdp.ConsumeIntInRange(0, 0xF),
            self.sequence(),
            sid,
            count,
            self.fdp.ConsumeIntInRange(0, 3),
            self.pick((0, 0, 0, 1)),
        )
        frames = [HEADER.pack(*fields), *take_frames(self.fdp, 5)]
        self.client(self.pick(CLIENTS), frames)

    def client_request(self) -> None:
        """A valid request of any type, for a live block or not."""
        identity, seq = self.pick(CLIENTS), self.sequence()
        sid, count = self.block_ids()
        count = max(1, min(count, 64))
        kind = self.fdp.ConsumeIntInRange(0, 6)
        if kind == 0:
            resume = sid if self.fdp.ConsumeBool() else 0
            message = messages.init(count, exploit=self.fdp.ConsumeBool(), session_id=resume)
        elif kind == 1:
            message = messages.update(
                sid,
                reward=np.zeros(count, np.float32),
                state=np.zeros((count, 2), np.float32),
                terminal=self.fdp.ConsumeBool(),
                truncated=self.fdp.ConsumeBool(),
            )
        elif kind == 2:
            message = messages.simple(MessageType.RESET, sid, count)
        elif kind == 3:
            message = messages.metrics(sid, {"score": 1.0}, session_count=count)
        else:
            mtype = (MessageType.HEARTBEAT, MessageType.CLOSE, MessageType.ACTION)[kind - 4]
            message = messages.simple(mtype, sid, count)
            if mtype == MessageType.ACTION:
                message = messages.action(sid, np.zeros(count, np.int64))
        message.sequence = seq
        self.client(identity, encode(message))

    def worker_raw(self) -> None:
        self.worker(self.pick(WORKERS), take_frames(self.fdp) or [b""])

    def worker_control(self) -> None:
        """REG, HB or BYE (or a broker-to-worker command) with a chosen or raw body."""
        command = self.pick(list(Command))
        identity = self.pick(WORKERS)
        if self.fdp.ConsumeBool():
            body = self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, 256))
        else:
            values: dict[str, Any] = {
                "worker": identity.decode(),
                "pid": self.fdp.ConsumeIntInRange(0, 1 << 16),
                "capacity": self.pick((0, 1, 2, 4, 64, 1 << 40, -1)),
                "link_version": self.pick((1, 1, 1, 0, 2)),
            }
            for key in list(values):
                how = self.fdp.ConsumeIntInRange(0, 7)
                if how == 0:
                    del values[key]
                elif how == 1:
                    values[key] = self.pick((None, True, "x", 1.5, [], {}))
            body = nested(self.fdp, json.dumps(values).encode())
        self.worker(identity, [command.value, body])

    def worker_reply(self) -> None:
        """A REP for a request in flight (or a near miss: other worker, client, sequence)."""
        waiting = [(b, s, e) for b in self.blocks() for s, e in b.in_flight.items()]
        if waiting and self.fdp.ConsumeBool():
            block, seq, entry = self.pick(waiting)
            sid, count, client, worker = block.id, block.count, entry.identity, block.worker
        else:
            (sid, count), seq = self.block_ids(), self.sequence()
            client, worker = self.pick(CLIENTS), self.pick(WORKERS)
        if self.fdp.ConsumeIntInRange(0, 3) == 0:
            worker = self.pick(WORKERS)
        if self.fdp.ConsumeIntInRange(0, 3) == 0:
            seq = self.sequence()
        count = max(1, min(count, 64))
        kind = self.fdp.ConsumeIntInRange(0, 3)
        if kind == 0:
            reply: Message | None = messages.action(sid, np.zeros(count, np.int64), sequence=seq)
        elif kind == 1:
            reply = messages.simple(MessageType.DONE, sid, count, sequence=seq)
        elif kind == 2:
            reply = messages.error(3, "no", sequence=seq, session_id=sid, session_count=count)
        else:
            reply = None
        frames = encode(reply) if reply is not None else take_frames(self.fdp, 4)
        self.worker(worker, [Command.REPLY.value, client, *frames])

    def time_passes(self) -> None:
        """The broker's tick at a later time: heartbeats, dead workers, idle blocks."""
        b = self.broker.config.broker
        later = self.pick((0.0, b.heartbeat_interval, self.broker.workers.timeout + 0.1, 31.0))
        self.broker._tick(time.monotonic() + later)

    def admin_command(self) -> None:
        workers = [w.name for w in self.broker.workers] + ["nobody"]
        sid, _ = self.block_ids()
        request = self.pick(
            (
                {"command": "status"},
                {"command": "drain", "worker": self.pick(workers)},
                {"command": "drop", "session": sid},
                {"command": self.fdp.ConsumeUnicode(8)},
            )
        )
        if self.fdp.ConsumeBool():
            raw = nested(self.fdp, json.dumps(request).encode())
        else:
            raw = self.fdp.ConsumeBytes(64)
        reply = json.loads(admin.handle(raw, self.broker))
        if "internal error" in str(reply.get("error", "")):
            raise Finding(f"admin {raw!r}: {reply['error']}")


def test_one_input(data: bytes) -> None:
    """Run the operations ``data`` stands for, checking the broker after each."""
    fdp = atheris.FuzzedDataProvider(data)
    broker = rig().broker()
    driver = Driver(broker, fdp)
    driver.register(WORKERS[0], 4)
    driver.register(WORKERS[1], 4)
    driver.client(CLIENTS[0], encode(messages.init(2)))
    driver.client(CLIENTS[1], encode(messages.init(1)))
    first = driver.blocks()[0]
    driver.client(first.client, encode(messages.update(first.id, reward=np.zeros(first.count))))
    check_state(broker, driver.requests)
    for _ in range(MAX_OPS):
        if not fdp.remaining_bytes():
            break
        driver.pick(driver.ops)()
        check_state(broker, driver.requests)
    check_served(driver)


def check_state(broker: Broker, requests: int) -> None:
    """The block table is consistent and the counters add up."""
    table = broker.sessions
    blocks = table._blocks
    if table._starts != sorted(blocks):
        raise Finding(f"block starts {table._starts} are not the blocks {sorted(blocks)}")
    last = 0
    for start in table._starts:
        block = blocks[start]
        if block.id != start or not 0 < block.count or block.id <= last or block.last >= ID_LIMIT:
            raise Finding(f"block {block.id}+{block.count} overlaps or is out of range")
        last = block.last
        if block.worker not in broker.workers:
            raise Finding(f"block {block.id} is on {block.worker!r}, which is not registered")
        if block.id not in table._by_worker.get(block.worker, ()):
            raise Finding(f"block {block.id} is missing from its worker's index")
        if any(not 0 <= seq <= _U64 for seq in block.in_flight):
            raise Finding(f"block {block.id} has sequences {list(block.in_flight)} in flight")
    for worker, ids in table._by_worker.items():
        if not ids or any(i not in blocks or blocks[i].worker != worker for i in ids):
            raise Finding(f"worker {worker!r} indexes blocks {ids} it does not host")
    counters = broker.counters
    if counters.requests != requests:
        raise Finding(f"{counters.requests} requests counted, {requests} handled")
    if any(v < 0 for v in counters.as_dict().values() if isinstance(v, int)):
        raise Finding(f"a negative counter: {counters.as_dict()}")


def check_served(driver: Driver) -> None:
    """A new client, served by a new worker, gets every answer it should."""
    r = rig()
    r.drain()
    driver.register(PROBE_WORKER, 4096)
    driver.client(PROBE_CLIENT, encode(messages.init(1, sequence=1)))
    ready = _expect(r.receive(PROBE_CLIENT), MessageType.READY, 1)
    block = driver.broker.sessions.get(ready.session_id)
    if block is None or block.client != PROBE_CLIENT:
        raise Finding(f"ready for session {ready.session_id}, which the broker does not hold")
    update = messages.update(block.id, reward=[0.0], state=[[0.0]], sequence=2)
    driver.client(PROBE_CLIENT, encode(update))
    forwarded = r.receive(block.worker, skip=(Command.ASSIGN.value, Command.HEARTBEAT.value))
    if forwarded[:2] != [Command.REQUEST.value, PROBE_CLIENT]:
        raise Finding(f"the update reached the worker as {forwarded[:2]}")
    _expect(forwarded[2:], MessageType.UPDATE, 2)
    action = encode(messages.action(block.id, [0], sequence=2))
    driver.worker(block.worker, [Command.REPLY.value, PROBE_CLIENT, *action])
    _expect(r.receive(PROBE_CLIENT), MessageType.ACTION, 2)
    driver.client(
        PROBE_CLIENT, encode(messages.simple(MessageType.HEARTBEAT, block.id, 1, sequence=3))
    )
    _expect(r.receive(PROBE_CLIENT), MessageType.HEARTBEAT, 3)
    driver.client(PROBE_CLIENT, encode(messages.simple(MessageType.CLOSE, block.id, 1, sequence=4)))
    _expect(r.receive(PROBE_CLIENT), MessageType.DONE, 4)
    check_state(driver.broker, driver.requests)


def _expect(frames: list[bytes], mtype: MessageType, sequence: int) -> Message:
    message = decode(frames)
    if message.type != mtype or message.sequence != sequence:
        raise Finding(f"expected {mtype.name} {sequence}, got {message!r}")
    return message


def _zmq_frames(identity: bytes, frames: Sequence[Any]) -> list[zmq.Frame]:
    """``[identity, *frames]`` as the ROUTER hands them to the broker."""
    return [zmq.Frame(identity), *(zmq.Frame(bytes(memoryview(f))) for f in frames)]
