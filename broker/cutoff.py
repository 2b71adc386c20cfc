"""Closing one client's connection on the broker's frontend (its ``PeerBudget`` is spent).

A ROUTER cannot close one peer, but the kernel socket under it can be shut down:
ZeroMQ tells which socket a message came from (``zmq.SRCFD`` of a frame), and
``shutdown(SHUT_RD)`` there makes ZeroMQ's I/O thread read the end of the stream and
drop the connection, as it drops a peer above ``MAXMSGSIZE``, while what was already
queued for the peer (its last replies, the ``BUSY`` naming the budget) is still sent.
The peer's ZeroMQ socket reconnects by itself after its reconnect interval, as a new
peer with a new identity and a full budget.

What the cut peer still had queued is dropped unread for ``HOLD`` seconds. Without a
descriptor (``inproc://``) the peer is only ignored for ``HOLD`` seconds.

A known limit: a descriptor is the connection's only name here, so a message read after
its connection ended, its descriptor already reused by a new connection, would cut the
new one (which reconnects). Messages wait at most ``FRONTEND_RCVHWM`` deep, so the window
is the time to read them; it has not been seen.
"""

from __future__ import annotations

import contextlib
import socket

#: Seconds a cut peer's messages are dropped unread (its connection is gone well before).
HOLD = 1.0


def shut_reading(fd: int) -> bool:
    """``shutdown(fd, SHUT_RD)`` on a descriptor ZeroMQ owns (it is not closed here)."""
    if fd < 0:
        return False
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=fd)
        try:
            sock.shutdown(socket.SHUT_RD)
            return True
        finally:
            sock.detach()  # the descriptor stays ZeroMQ's
    return False


class Cutoff:
    """Peers cut off, by ROUTER identity, until ``HOLD`` seconds have passed."""

    def __init__(self) -> None:
        #: identity -> when it is forgotten (a plain dict: the broker tests it per message)
        self.held: dict[bytes, float] = {}

    def __bool__(self) -> bool:
        return bool(self.held)

    def __contains__(self, identity: bytes) -> bool:
        return identity in self.held

    def __len__(self) -> int:
        return len(self.held)

    def cut(self, identity: bytes, fd: int, now: float) -> None:
        """Cut ``identity`` off: shut its connection (``fd``; -1: none) and ignore it."""
        self.held[identity] = now + HOLD
        shut_reading(fd)

    def tick(self, now: float) -> None:
        """Forget the peers held long enough."""
        for identity in [i for i, until in self.held.items() if now >= until]:
            del self.held[identity]
