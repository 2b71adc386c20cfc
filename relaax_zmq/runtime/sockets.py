"""The socket map: every socket of the exchange, built from the config in one place.

``socket_map(config)`` says, for each named socket, its ZeroMQ type, whether it
binds or connects, its endpoint, its high-water marks and its maximum message
size; ``open_socket`` creates one in the calling thread (sockets are never
shared between threads). ``socket_map(config, inproc=True)`` is the same map
over ``inproc://`` endpoints, for running every component as a thread of one
process (tests, debugging).

Names: ``broker.frontend`` / ``broker.backend`` / ``broker.admin`` (the
broker's ROUTERs), ``worker.backend`` (a worker's DEALER to the broker),
``client.frontend`` (a client's DEALER to the broker), ``admin.client`` (a
DEALER talking to the admin endpoint); per parameter-server shard i,
``ps[i].gradients`` (the shard's PULL) and ``ps[i].weights`` (its PUB), and
``worker.ps[i].gradients`` / ``worker.ps[i].weights`` (a worker's PUSH and SUB
to it; docs/parameter_servers.md); ``metrics.collector`` (the collector's PULL) and
``worker.metrics`` / ``ps.metrics`` / ``client.metrics`` (the PUSH of a sender of that kind).

With ``security.curve`` every socket off ``inproc://`` gets a ``CurveSpec``
(docs/security.md): the role of its owner (the name's first part; ``ps`` is the
``shard`` role), and for a connecting socket the role of the socket bound at
the same endpoint, for a bound one the roles of the sockets that connect to it.

A bound socket's listen backlog is ``LISTEN_BACKLOG``: a burst of clients connecting at
once is accepted without dropped SYNs (and their seconds of TCP retransmits).

Message sizes: a spec's ``max_message_bytes`` is the largest legal message on that
socket (the exchange's ``broker.max_message_bytes``, a parameter-server payload frame,
a metrics batch, an admin request). ZeroMQ's ``MAXMSGSIZE`` is set to
``FRAME_LIMIT_FACTOR`` times it: a legal message always fits, and a peer sending a
larger frame is disconnected by ZeroMQ, alone, before anything is allocated for it.
Between the two, the receiver's decoder refuses the message with an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.security.curve import CurveSpec, apply_curve

#: ZeroMQ's ``MAXMSGSIZE`` (per frame) over the largest legal message of a socket.
FRAME_LIMIT_FACTOR = 2
#: Messages queued per peer before ZeroMQ blocks or drops (0 would mean unlimited).
DEFAULT_HWM = 10_000
#: Messages the broker's frontend queues from one client before ZeroMQ stops reading that
#: client's connection: more than the requests one block may have in flight
#: (``broker.sessions.MAX_IN_FLIGHT``), few enough that a flooding client meets TCP's
#: backpressure instead of filling the broker's memory (docs/security.md, "Per-peer budget").
FRONTEND_RCVHWM = 128
#: Control and admin messages are small; anything above this is a misbehaving peer.
ADMIN_MAX_MESSAGE_BYTES = 1 << 20
#: Largest metrics batch a sender sends (it drops larger ones) and a collector reads.
METRICS_MAX_MESSAGE_BYTES = 16 << 20
#: Gradient slices a worker queues per shard before its pushes are dropped (and counted),
#: at most: ``gradient_hwm`` lowers it for large slices.
PS_GRADIENTS_HWM = 256
#: Bytes of gradient slices one PUSH or PULL pipe may queue (``gradient_hwm``).
PS_GRADIENTS_QUEUE_BYTES = 512 << 20
#: Weight publications queued per subscriber; a slow one misses versions and asks again.
PS_WEIGHTS_HWM = 16
#: Connections the kernel queues, not yet accepted, on a bound socket (ZMQ_BACKLOG; the
#: kernel caps it at net.core.somaxconn). ZeroMQ's default of 100 overflows when many peers
#: start at once: each dropped SYN waits TCP's retransmit (1 s, then 3 s, 7 s ...). 1,000
#: DEALERs connecting at once: 1.06 s median (up to 4.2 s) with 100, 0.07 s with this
#: (``python -m bench.connect``).
LISTEN_BACKLOG = 4096


def gradient_hwm(slice_values: int) -> int:
    """The HWM of a gradient pipe for slices of ``slice_values`` float32: at most
    ``PS_GRADIENTS_QUEUE_BYTES`` queued (ZeroMQ counts messages, not bytes), 2 at least."""
    fit = PS_GRADIENTS_QUEUE_BYTES // max(1, 4 * slice_values)
    return max(2, min(PS_GRADIENTS_HWM, fit))


@dataclass(frozen=True)
class SocketSpec:
    """How one socket is made: type, endpoint, bind or connect, limits."""

    name: str
    type: int
    endpoint: str
    bind: bool
    #: the largest legal message; ZeroMQ drops a peer whose frame exceeds ``frame_limit``
    max_message_bytes: int
    hwm: int = DEFAULT_HWM
    #: messages queued from each peer before ZeroMQ stops reading its connection (TCP then
    #: slows the peer down); None: ``hwm``
    rcv_hwm: int | None = None
    linger_ms: int = 0
    #: a ROUTER hands a known identity over to its newest connection (a worker that reconnects)
    handover: bool = False
    #: queue messages only on completed connections (ZMQ_IMMEDIATE): nothing waits for a dead peer
    immediate: bool = False
    #: CURVE keys and peers (``security.curve``); None: plaintext (NULL mechanism)
    curve: CurveSpec | None = None
    #: where a bound socket listens when not at ``endpoint`` (``bind_all_interfaces``:
    #: ``tcp://*:PORT``; peers still connect to ``endpoint``)
    bind_endpoint: str | None = None

    @property
    def frame_limit(self) -> int:
        """ZeroMQ's ``MAXMSGSIZE``: ``FRAME_LIMIT_FACTOR`` times the largest legal message."""
        return FRAME_LIMIT_FACTOR * self.max_message_bytes


def socket_map(config: AppConfig, *, inproc: bool = False) -> dict[str, SocketSpec]:
    """Every exchange socket of ``config`` by name (see the module docstring)."""
    b = config.broker
    limit = b.max_message_bytes or config.protocol.max_message_bytes
    specs = [
        SocketSpec("broker.frontend", zmq.ROUTER, b.frontend, True, limit, rcv_hwm=FRONTEND_RCVHWM),
        SocketSpec("broker.backend", zmq.ROUTER, b.backend, True, limit, handover=True),
        SocketSpec("broker.admin", zmq.ROUTER, b.admin, True, ADMIN_MAX_MESSAGE_BYTES),
        SocketSpec("worker.backend", zmq.DEALER, b.backend, False, limit),
        SocketSpec("client.frontend", zmq.DEALER, b.frontend, False, limit),
        SocketSpec("admin.client", zmq.DEALER, b.admin, False, ADMIN_MAX_MESSAGE_BYTES),
    ]
    specs += _parameter_server_specs(config)
    specs += _metrics_specs(config)
    specs += _experience_specs(config)
    if inproc:
        specs = [replace(s, endpoint=_inproc(s.endpoint)) for s in specs]
    else:
        if config.security.curve:
            specs = _with_curve(config, specs)
        if config.bind_all_interfaces:
            specs = [
                replace(s, bind_endpoint=any_interface(s.endpoint)) if s.bind else s for s in specs
            ]
    return {s.name: s for s in specs}


#: Key role of a socket's owner by the first part of the socket's name.
_OWNER_ROLE = {
    "broker": "broker",
    "worker": "worker",
    "client": "client",
    "admin": "admin",
    "ps": "shard",
    "metrics": "metrics",
    "learner": "learner",
    "replay": "replay",
}


def owner_role(name: str) -> str:
    """The key role of the process that owns socket ``name`` (``ps[0].weights`` -> shard)."""
    return _OWNER_ROLE[name.split(".")[0].split("[")[0]]


def _with_curve(config: AppConfig, specs: list[SocketSpec]) -> list[SocketSpec]:
    """``specs`` with their ``CurveSpec``: servers admit the roles that connect to them."""
    sec = config.security
    assert sec.keys_dir is not None  # validated with curve
    servers = {s.endpoint: owner_role(s.name) for s in specs if s.bind}
    admitted: dict[str, set[str]] = {}
    for s in specs:
        if not s.bind:
            admitted.setdefault(s.endpoint, set()).add(owner_role(s.name))
    out = []
    for s in specs:
        role = owner_role(s.name)
        base = {
            "keys_dir": sec.keys_dir,
            "role": role,
            "name": sec.key_name(role),
            "reload_interval": sec.reload_interval,
        }
        if s.bind:
            curve = CurveSpec(**base, admit=tuple(sorted(admitted.get(s.endpoint, ()))))
        else:
            server = servers[s.endpoint]
            curve = CurveSpec(**base, server_role=server, server_name=sec.key_name(server))
        out.append(replace(s, curve=curve))
    return out


def _metrics_specs(config: AppConfig) -> list[SocketSpec]:
    from relaax_zmq.metrics.wire import SENDER_HWM

    endpoint, limit = config.metrics.endpoint, metrics_message_limit(config)
    specs = [SocketSpec("metrics.collector", zmq.PULL, endpoint, True, limit)]
    for kind in ("worker", "ps", "client", "learner", "replay"):
        specs.append(
            SocketSpec(f"{kind}.metrics", zmq.PUSH, endpoint, False, limit, hwm=SENDER_HWM)
        )
    return specs


def metrics_message_limit(config: AppConfig) -> int:
    """The largest metrics batch of ``config``: ``METRICS_MAX_MESSAGE_BYTES`` at most."""
    return min(config.protocol.max_message_bytes, METRICS_MAX_MESSAGE_BYTES)


def _parameter_server_specs(config: AppConfig) -> list[SocketSpec]:
    from relaax_zmq.ps.wire import MAX_FRAME_BYTES

    ps, limit = config.parameter_servers, MAX_FRAME_BYTES
    grads_hwm, weights_hwm = PS_GRADIENTS_HWM, PS_WEIGHTS_HWM
    specs = []
    for i in range(ps.shards):
        grads, weights = ps.gradients_endpoint(i), ps.weights_endpoint(i)
        specs += [
            SocketSpec(f"ps[{i}].gradients", zmq.PULL, grads, True, limit, hwm=grads_hwm),
            SocketSpec(f"ps[{i}].weights", zmq.PUB, weights, True, limit, hwm=weights_hwm),
        ]
        for owner in ("worker", "learner"):  # a learner pushes to the shards as workers do
            specs += [
                SocketSpec(
                    f"{owner}.ps[{i}].gradients",
                    zmq.PUSH,
                    grads,
                    False,
                    limit,
                    hwm=grads_hwm,
                    immediate=True,
                ),
                SocketSpec(
                    f"{owner}.ps[{i}].weights", zmq.SUB, weights, False, limit, hwm=weights_hwm
                ),
            ]
    return specs


#: The largest experience message (unrolls, transitions, a sampled batch): ZeroMQ drops a
#: peer whose frame exceeds twice this.
EXPERIENCE_MAX_MESSAGE_BYTES = 256 << 20


def experience_hwm(queue_bytes: int, message_bytes: int) -> int:
    """Messages of ``message_bytes`` one experience pipe may queue to hold ``queue_bytes``
    (ZeroMQ counts messages, not bytes): 2 at least."""
    return max(2, queue_bytes // max(1, message_bytes))


def _experience_specs(config: AppConfig) -> list[SocketSpec]:
    """Actors' unrolls to learners, transitions to replay servers, learners' samples
    (docs/learner.md). The HWMs here are placeholders: ``experience_hwm`` sets them from
    the queue's bytes once a pipe's message size is known."""
    limit, learner, replay = EXPERIENCE_MAX_MESSAGE_BYTES, config.learner, config.replay
    specs = []
    for i in range(learner.count):
        endpoint = learner.endpoint_of(i)
        specs += [
            SocketSpec(f"learner[{i}].unrolls", zmq.PULL, endpoint, True, limit),
            SocketSpec(f"worker.learner[{i}]", zmq.PUSH, endpoint, False, limit, immediate=True),
        ]
    for i in range(replay.shards):
        insert, sample = replay.insert_endpoint(i), replay.sample_endpoint(i)
        specs += [
            SocketSpec(f"replay[{i}].insert", zmq.PULL, insert, True, limit),
            SocketSpec(f"worker.replay[{i}]", zmq.PUSH, insert, False, limit, immediate=True),
            SocketSpec(f"replay[{i}].sample", zmq.ROUTER, sample, True, limit, hwm=64),
            SocketSpec(f"learner.replay[{i}]", zmq.DEALER, sample, False, limit, hwm=64),
        ]
    return specs


def open_socket(
    context: zmq.Context, spec: SocketSpec, *, identity: bytes | None = None
) -> zmq.Socket:
    """Create, configure and bind or connect the socket ``spec`` describes."""
    sock = context.socket(spec.type)
    try:
        sock.setsockopt(zmq.LINGER, spec.linger_ms)
        sock.setsockopt(zmq.SNDHWM, spec.hwm)
        sock.setsockopt(zmq.RCVHWM, spec.hwm if spec.rcv_hwm is None else spec.rcv_hwm)
        sock.setsockopt(zmq.MAXMSGSIZE, spec.frame_limit)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        if spec.immediate:
            sock.setsockopt(zmq.IMMEDIATE, 1)
        if spec.curve is not None:
            apply_curve(context, sock, spec.curve, spec.name)
        if spec.type == zmq.ROUTER:
            # a reply to a vanished peer is an error we can count, not a silent drop
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.ROUTER_HANDOVER, int(spec.handover))
        if spec.bind:
            sock.setsockopt(zmq.BACKLOG, LISTEN_BACKLOG)
            sock.bind(spec.bind_endpoint or spec.endpoint)
        else:
            sock.connect(spec.endpoint)
    except BaseException:
        sock.close(0)
        raise
    return sock


def any_interface(endpoint: str) -> str | None:
    """``tcp://relaax-broker:7000`` -> ``tcp://*:7000``; None for a non-tcp endpoint."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "tcp":
        return None
    return f"tcp://*:{rest.rpartition(':')[2]}"


def _inproc(endpoint: str) -> str:
    """``tcp://127.0.0.1:7000`` -> ``inproc://127.0.0.1-7000`` (same name on both sides)."""
    rest = endpoint.partition("://")[2]
    return "inproc://" + rest.replace(":", "-").replace("/", "_")
