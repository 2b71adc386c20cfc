"""The operations sections: ``prometheus`` (a /metrics endpoint per daemon) and
``autoscale`` (worker processes added and removed on demand); docs/deploy.md."""

from __future__ import annotations

from dataclasses import dataclass

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path
from relaax_zmq.errors import ConfigError

#: Daemon kinds that may expose /metrics, with how their port is found.
PROMETHEUS_DAEMONS = ("broker", "collector", "gateway", "shards", "workers", "autoscaler")
PROMETHEUS_DAEMONS += ("learners", "replay")


@dataclass(frozen=True, kw_only=True)
class PrometheusConfig:
    """Prometheus /metrics (and /healthz) endpoints, one per daemon, each off unless its port
    is set. Shard i binds ``shards + i``; the i-th worker of a host binds ``workers + i``
    (an autoscaler's workers are numbered the same way, from 0)."""

    host: str = option("127.0.0.1", doc="address the endpoints bind (loopback by default)")
    broker: int | None = option(None, ge=0, le=65535, doc="broker's port; null: none")
    collector: int | None = option(None, ge=0, le=65535, doc="collector's port; null: none")
    gateway: int | None = option(None, ge=0, le=65535, doc="gateway's port; null: none")
    shards: int | None = option(None, ge=0, le=65535, doc="shard 0's port (shard i: + i)")
    workers: int | None = option(None, ge=0, le=65535, doc="worker 0's port (worker i: + i)")
    autoscaler: int | None = option(None, ge=0, le=65535, doc="autoscaler's port; null: none")
    learners: int | None = option(None, ge=0, le=65535, doc="learner 0's port (learner i: + i)")
    replay: int | None = option(None, ge=0, le=65535, doc="replay server 0's port (i: + i)")

    def port(self, daemon: str, index: int = 0) -> int | None:
        """The port of ``daemon`` (one of ``PROMETHEUS_DAEMONS``) number ``index``; None: off.
        A configured port of 0 stays 0 (any free port) for every index."""
        if daemon not in PROMETHEUS_DAEMONS:
            raise ValueError(f"expected one of {', '.join(PROMETHEUS_DAEMONS)}, got {daemon!r}")
        base = getattr(self, daemon)
        if base is None:
            return None
        return 0 if base == 0 else base + index


@dataclass(frozen=True, kw_only=True)
class AutoscaleConfig:
    """The autoscaler: worker processes on its host between ``min`` and ``max``, grown while
    the broker refuses sessions or runs near capacity, shrunk below ``low_water``."""

    enabled: bool = option(False, doc="run the autoscaler with the app's servers")
    min: int = option(1, ge=0, doc="fewest workers the autoscaler keeps on its host")
    max: int = option(4, ge=1, doc="most workers the autoscaler runs on its host")
    interval: float = option(1.0, gt=0, doc="seconds between looks at the broker's status")
    high_water: float = option(
        0.9, gt=0, le=1, doc="sessions over capacity above which demand is too high"
    )
    low_water: float = option(
        0.3, ge=0, lt=1, doc="sessions over capacity below which a worker is removed"
    )
    up_after: float = option(2.0, ge=0, doc="seconds demand stays high before adding")
    down_after: float = option(20.0, ge=0, doc="seconds demand stays low before removing")
    up_step: int = option(1, ge=1, doc="workers added at once")
    cooldown: float = option(5.0, ge=0, doc="seconds after a change before the next one")
    drain_timeout: float = option(
        120.0, gt=0, doc="seconds a removed worker may take to hand its sessions over"
    )

    def validate_config(self, path: str) -> None:
        if self.min > self.max:
            raise ConfigError(
                key_path(path, "min"), f"expected at most max ({self.max}), got {self.min}"
            )
        if self.low_water >= self.high_water:
            raise ConfigError(
                key_path(path, "low_water"),
                f"expected below high_water ({self.high_water}), got {self.low_water}",
            )
