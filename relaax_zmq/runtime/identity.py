"""Cluster-unique names for the daemons of many hosts, without configuration.

A daemon's name is ``<local name>@<host>``: the name the app gives it on its host
(``worker-0``) at the host's name (``socket.gethostname()``, which on Kubernetes is the
pod's name; ``RELAAX_ZMQ_HOST`` overrides it), such as ``worker-0@node-7``. It is a valid
metrics source and parameter-server worker name as it stands. Each process also draws an
instance token when it starts, so that two processes that claim the same name can be told
apart (the broker refuses the second one while the first is alive; docs/exchange.md, "Link").
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["HOST_ENV", "cluster_name", "host_name", "instance_token"]

#: Environment variable that names this host instead of its host name.
HOST_ENV = "RELAAX_ZMQ_HOST"


def host_name() -> str:
    """This host's name in the cluster: ``$RELAAX_ZMQ_HOST``, else the host name."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def cluster_name(name: str) -> str:
    """``name`` qualified by the host (``worker-0@vm``); a name holding ``@`` is kept."""
    if not name or name.strip() != name:
        raise ValueError(f"expected a non-empty name without surrounding spaces, got {name!r}")
    return name if "@" in name else f"{name}@{host_name()}"


def instance_token() -> str:
    """A fresh random token naming one process's run (16 hex digits)."""
    return secrets.token_hex(8)
