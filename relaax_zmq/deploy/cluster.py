"""The app file as the cluster runs it: every endpoint on a Service's DNS name, bound sockets
listening on all interfaces, paths inside the image and its volumes, a /metrics port for
every daemon. The user's other settings are kept as written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from relaax_zmq.config import AppConfig
from relaax_zmq.errors import ConfigError

#: Object (and DNS) names of each part.
NAMES = {
    "broker": "relaax-broker",
    "collector": "relaax-collector",
    "shard": "relaax-shard",
    "worker": "relaax-worker",
    "gateway": "relaax-gateway",
    "config": "relaax-app",
    "keys": "relaax-keys",
}
#: Where things are inside a container.
APP_DIR = "/app"
APP_FILE = f"{APP_DIR}/app.cluster.yaml"
KEYS_DIR = "/etc/relaax/keys"
DATA_DIR = "/data"
#: /metrics ports the cluster uses where the app sets none.
PROMETHEUS_PORTS = {
    "broker": 9464,
    "collector": 9465,
    "gateway": 9466,
    "shards": 9470,
    "workers": 9480,
}


#: Files and folders a daemon reads (by key, with the part that reads them): the image holds
#: the app folder only, so they must lie in it and become relative to it.
APP_FILES = (
    ("algorithm.path", None),
    ("parameter_servers.checkpoint.s3.keys_file", None),
    *((f"gateway.{key}", "gateway") for key in ("token_file", "static_dir", "tls_cert", "tls_key")),
)


def _port(endpoint: str, key: str) -> int:
    scheme, _, rest = endpoint.partition("://")
    port = rest.rpartition(":")[2]
    if scheme != "tcp" or not port.isdigit():
        raise ConfigError(
            key,
            f"expected a tcp://HOST:PORT endpoint that pods can reach over the network, "
            f"got {endpoint!r}",
        )
    return int(port)


def _in_image(app: dict[str, Any], config: AppConfig) -> None:
    """Rewrite ``APP_FILES`` relative to the app folder; ConfigError for one outside it."""
    for key, part in APP_FILES:
        value: Any = config
        for name in key.split("."):
            value = getattr(value, name) if value is not None else None
        if value is None or (part == "gateway" and not config.gateway.enabled):
            continue
        try:
            relative = Path(value).resolve().relative_to(config.app_dir.resolve())
        except ValueError:
            raise ConfigError(
                key,
                f"expected a path inside the app folder {str(config.app_dir)!r} (the image "
                f"holds only that folder), got {str(value)!r}",
            ) from None
        *parents, last = key.split(".")
        section = app
        for name in parents:
            section = section[name]
        section[last] = relative.as_posix()


def cluster_app(raw: dict[str, Any], config: AppConfig) -> dict[str, Any]:
    """The app mapping ``raw`` (as read from the file; ``config`` is it loaded) for the
    cluster (see the module docstring). ConfigError for what cannot work across pods."""
    app = copy.deepcopy(raw)
    _in_image(app, config)
    broker = app.setdefault("broker", {})
    for key in ("frontend", "backend", "admin"):
        port = _port(str(getattr(config.broker, key)), f"broker.{key}")
        broker[key] = f"tcp://{NAMES['broker']}:{port}"
    metrics = app.setdefault("metrics", {})
    port = _port(str(config.metrics.endpoint), "metrics.endpoint")
    metrics["endpoint"] = f"tcp://{NAMES['collector']}:{port}"
    metrics["logdir"] = f"{DATA_DIR}/metrics"
    ps = app.setdefault("parameter_servers", {})
    endpoints = ps.setdefault("endpoints", {})
    endpoints.pop("host", None)
    endpoints["hosts"] = [
        f"{NAMES['shard']}-{i}.{NAMES['shard']}" for i in range(config.parameter_servers.shards)
    ]
    if config.parameter_servers.checkpoint.dir is not None:
        ps.setdefault("checkpoint", {})["dir"] = f"{DATA_DIR}/checkpoints"
    app["bind_all_interfaces"] = True
    prometheus = app.setdefault("prometheus", {})
    prometheus["host"] = "0.0.0.0"
    for daemon, default in PROMETHEUS_PORTS.items():
        if prometheus.get(daemon) in (None, 0):
            prometheus[daemon] = default
    prometheus.pop("autoscaler", None)
    if config.gateway.enabled:
        app["gateway"]["host"] = "0.0.0.0"
    if config.security.curve:
        app["security"]["keys_dir"] = KEYS_DIR
    app.setdefault("workers", {})["count"] = 1  # one worker per pod
    app.pop("autoscale", None)  # the HorizontalPodAutoscaler scales worker pods instead
    return app


def prometheus_port(app: dict[str, Any], daemon: str, index: int = 0) -> int:
    """The /metrics port of ``daemon`` in a ``cluster_app`` mapping."""
    return int(app["prometheus"][daemon]) + index
