"""The parameter-server section: shards and their ports, how gradients combine, checkpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path
from relaax_zmq.config.values import check_host, check_port, check_port_ranges
from relaax_zmq.errors import ConfigError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class S3Config:
    """Where checkpoints go in S3 (or an S3-compatible store)."""

    bucket: str = option(doc="bucket name")
    prefix: str = option("", doc="key prefix inside the bucket")
    endpoint_url: str | None = option(None, doc="http(s) URL of an S3-compatible store")
    region: str | None = option(None, doc="AWS region; null: boto3's default")
    keys_file: Path | None = option(None, doc="file with the access keys; null: boto3's chain")

    def validate_config(self, path: str) -> None:
        if not _BUCKET.match(self.bucket):
            raise ConfigError(
                key_path(path, "bucket"), f"expected an S3 bucket name, got {self.bucket!r}"
            )
        if self.prefix.startswith("/"):
            raise ConfigError(
                key_path(path, "prefix"), f"expected no leading '/', got {self.prefix!r}"
            )
        url = self.endpoint_url
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(
                key_path(path, "endpoint_url"), f"expected an http(s) URL, got {url!r}"
            )
        if self.keys_file is not None and not self.keys_file.is_file():
            raise ConfigError(
                key_path(path, "keys_file"),
                f"expected an existing file, got {str(self.keys_file)!r}",
            )


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """When and where shards save their slice; a restart restores the newest valid one."""

    dir: Path | None = option(Path("logs/checkpoints"), doc="folder on disk; null: none")
    s3: S3Config | None = option(None, doc="S3 location; null: none")
    every_steps: int | None = option(None, ge=1, doc="checkpoint every N global steps")
    every_seconds: float | None = option(900.0, gt=0, doc="checkpoint every N seconds")
    keep: int = option(5, ge=1, doc="newest checkpoints kept")
    keep_best: int = option(0, ge=0, doc="best checkpoints kept besides")
    best_metric: str = option("episode_reward", doc="metric that ranks 'best' (higher wins)")
    restore: bool = option(True, doc="restore the newest valid checkpoint on start")


@dataclass(frozen=True, kw_only=True)
class ShardEndpoints:
    """Shard i binds ``tcp://host:gradients_port+i`` (PULL), ``tcp://host:weights_port+i`` (PUB);
    with ``hosts`` shard i is at ``hosts[i]`` instead (a host per shard: a StatefulSet's pods)."""

    host: str = option("127.0.0.1", doc="host of every shard")
    hosts: tuple[str, ...] = option((), doc="host of each shard (shard i: hosts[i]); empty: host")
    gradients_port: int = option(7100, doc="port of shard 0's gradient PULL")
    weights_port: int = option(7200, doc="port of shard 0's weight PUB")

    def validate_config(self, path: str) -> None:
        for where, host in [
            ("host", self.host),
            *((f"hosts[{i}]", h) for i, h in enumerate(self.hosts)),
        ]:
            check_host(host, key_path(path, where))
            if host == "*":
                raise ConfigError(key_path(path, where), "workers connect to this host; got '*'")
        check_port(self.gradients_port, key_path(path, "gradients_port"))
        check_port(self.weights_port, key_path(path, "weights_port"))


@dataclass(frozen=True, kw_only=True)
class ParameterServersConfig:
    """Sharded parameter servers: ports, update rule, global step and checkpoints."""

    shards: int = option(1, ge=1, le=1024, doc="slices of the parameter vector")
    endpoints: ShardEndpoints = option(factory=ShardEndpoints, doc="ports of the shards")
    update: Literal["async", "sync"] = option("async", doc="apply as they come or in rounds")
    combine: Literal["fifo", "average", "delay_compensation"] | None = option(
        None, doc="how gradients combine; null: fifo (async), average (sync)"
    )
    average_window: int = option(4, ge=1, doc="gradients per step with combine: average")
    delay_compensation_lambda: float = option(0.04, ge=0, doc="lambda of DC-ASGD")
    max_staleness: int | None = option(None, ge=0, doc="drop gradients this many versions old")
    sync_workers: int | None = option(
        None, ge=1, doc="gradients per sync round; null: workers.count"
    )
    max_global_step: int | None = option(None, ge=1, doc="stop training at this global step")
    heartbeat_interval: float = option(1.0, gt=0, doc="seconds between shard heartbeats")
    heartbeat_liveness: int = option(3, ge=1, doc="missed heartbeats before a shard is dead")
    checkpoint: CheckpointConfig = option(factory=CheckpointConfig, doc="checkpoints")

    @property
    def effective_combine(self) -> str:
        """``combine`` with its default filled in."""
        return self.combine or ("average" if self.update == "sync" else "fifo")

    def shard_host(self, shard: int) -> str:
        """The host of shard ``shard``: ``endpoints.hosts[shard]``, else ``endpoints.host``."""
        hosts = self.endpoints.hosts
        return hosts[shard] if hosts else self.endpoints.host

    def gradients_endpoint(self, shard: int) -> str:
        """``tcp://host:port`` where shard ``shard`` pulls gradients."""
        return f"tcp://{self.shard_host(shard)}:{self.endpoints.gradients_port + shard}"

    def weights_endpoint(self, shard: int) -> str:
        """``tcp://host:port`` where shard ``shard`` publishes weights."""
        return f"tcp://{self.shard_host(shard)}:{self.endpoints.weights_port + shard}"

    def port_ranges(self, path: str) -> list[tuple[str, int, int]]:
        """(key path, first, last) of the gradient and weight port ranges."""
        where = key_path(path, "endpoints")
        last = self.shards - 1
        grads, weights = self.endpoints.gradients_port, self.endpoints.weights_port
        return [
            (key_path(where, "gradients_port"), grads, grads + last),
            (key_path(where, "weights_port"), weights, weights + last),
        ]

    def validate_config(self, path: str) -> None:
        ranges = self.port_ranges(path)
        for where, first, last in ranges:
            if last > 65535:
                raise ConfigError(
                    where,
                    f"{self.shards} shards need ports {first}..{last}; the last port is 65535",
                )
        check_port_ranges(ranges)
        hosts = self.endpoints.hosts
        if hosts and len(hosts) != self.shards:
            raise ConfigError(
                key_path(path, "endpoints.hosts"),
                f"expected one host per shard ({self.shards}), got {len(hosts)}",
            )
        if self.update == "sync" and self.combine not in (None, "average"):
            raise ConfigError(
                key_path(path, "combine"),
                "update 'sync' averages each round; "
                f"expected 'average' or null, got {self.combine!r}",
            )
