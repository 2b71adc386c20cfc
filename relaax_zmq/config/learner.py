"""The central-learner sections: ``learner`` (learner daemons fed by the workers' unrolls or
a replay) and ``replay`` (prioritized replay servers); docs/learner.md.

Both are used only by an algorithm with a learner side (impala, appo, apex); the others
ignore them. Learner i and replay server i listen at their first endpoint's port + i.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path
from relaax_zmq.config.values import ZmqEndpoint
from relaax_zmq.errors import ConfigError

_DEVICES = ("cpu", "cuda", "mps")


def indexed_endpoint(endpoint: str, index: int) -> str:
    """``tcp://h:7010`` and 2 -> ``tcp://h:7012``; ``ipc://p`` -> ``ipc://p-2`` (0: as is)."""
    if index == 0:
        return endpoint
    scheme, _, rest = endpoint.partition("://")
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        return f"tcp://{host}:{int(port) + index}"
    return f"{endpoint}-{index}"


def _port(endpoint: str) -> int | None:
    scheme, _, rest = endpoint.partition("://")
    return int(rest.rpartition(":")[2]) if scheme == "tcp" else None


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """Learner daemons: where actors send unrolls, how much may queue, how stale they may be."""

    endpoint: ZmqEndpoint = option(
        ZmqEndpoint("tcp://127.0.0.1:7010"), doc="learner 0's PULL for unrolls (learner i: + i)"
    )
    count: int = option(1, ge=1, le=64, doc="learner daemons; actors spread unrolls over them")
    device: str = option("cpu", doc="torch device of the learner: cpu, cuda, cuda:N or mps")
    torch_threads: int | None = option(1, ge=1, doc="torch threads of a learner; null: torch's")
    queue_mib: float = option(
        32.0, gt=0, doc="MiB of experience one actor-to-learner pipe queues at each end"
    )
    send_timeout: float = option(
        1.0, gt=0, doc="seconds an actor waits on a full queue before it drops (and counts)"
    )
    max_lag: int = option(
        16, ge=0, doc="unrolls whose weights lag the learner's by more versions are dropped"
    )
    wait_timeout: float = option(
        5.0, gt=0, doc="longest wait for the shards' next version after a push (seconds)"
    )

    def endpoint_of(self, index: int) -> str:
        """Learner ``index``'s endpoint."""
        return indexed_endpoint(self.endpoint, index)

    def port_ranges(self, path: str) -> list[tuple[str, int, int]]:
        port = _port(self.endpoint)
        return [] if port is None else [(key_path(path, "endpoint"), port, port + self.count - 1)]

    def validate_config(self, path: str) -> None:
        device = self.device.split(":")[0]
        if device not in _DEVICES or (":" in self.device and not self.device[5:].isdigit()):
            raise ConfigError(
                key_path(path, "device"), f"expected cpu, cuda, cuda:N or mps, got {self.device!r}"
            )


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    """Prioritized replay servers (Ape-X): capacity, priorities and the rate limiter."""

    insert: ZmqEndpoint = option(
        ZmqEndpoint("tcp://127.0.0.1:7020"), doc="server 0's PULL for transitions (server i: + i)"
    )
    sample: ZmqEndpoint = option(
        ZmqEndpoint("tcp://127.0.0.1:7030"), doc="server 0's ROUTER for samples (server i: + i)"
    )
    shards: int = option(1, ge=1, le=64, doc="replay servers; actors spread transitions over them")
    capacity: int = option(100_000, ge=1, doc="transitions each server keeps (a ring)")
    alpha: float = option(0.6, ge=0, doc="priority exponent (0: uniform)")
    samples_per_insert: float | None = option(
        8.0, gt=0, doc="sampled over inserted transitions the limiter keeps; null: no ratio"
    )
    min_size_to_sample: int = option(1000, ge=1, doc="transitions a server holds before samples")
    error_buffer: float | None = option(
        None, gt=0, doc="slack around the ratio, in sampled transitions; null: 100 x max(1, ratio)"
    )
    queue_mib: float = option(
        32.0, gt=0, doc="MiB of transitions one actor-to-server pipe queues at each end"
    )
    send_timeout: float = option(
        1.0, gt=0, doc="seconds an actor waits on a full queue before it drops (and counts)"
    )

    def insert_endpoint(self, index: int) -> str:
        return indexed_endpoint(self.insert, index)

    def sample_endpoint(self, index: int) -> str:
        return indexed_endpoint(self.sample, index)

    @property
    def buffer(self) -> float:
        """``error_buffer``, or its default."""
        if self.error_buffer is not None:
            return self.error_buffer
        return 100.0 * max(1.0, self.samples_per_insert or 1.0)

    def port_ranges(self, path: str) -> list[tuple[str, int, int]]:
        out = []
        for name in ("insert", "sample"):
            port = _port(getattr(self, name))
            if port is not None:
                out.append((key_path(path, name), port, port + self.shards - 1))
        return out

    def validate_config(self, path: str) -> None:
        if self.insert == self.sample:
            raise ConfigError(key_path(path, "sample"), f"{self.sample!r} is also the insert one")
        spi = self.samples_per_insert
        if spi is not None and self.buffer < spi:
            raise ConfigError(
                key_path(path, "error_buffer"),
                f"expected at least samples_per_insert ({spi}) or the limiter could block "
                f"both sides at once, got {self.buffer}",
            )
