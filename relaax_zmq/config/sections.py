"""The sections of an app config: environment, broker, workers, metrics, algorithm,
protocol and security (parameter servers live in ``parameter_servers.py``).

Durations are seconds (float) unless the name ends in ``_ms``; memory is MiB
(``_mib``). docs/config.md is the reference of every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaax_zmq.config.convert import option
from relaax_zmq.config.describe import key_path
from relaax_zmq.config.tracking import MlflowConfig, WandbConfig
from relaax_zmq.config.values import RunnerSpec, ZmqEndpoint
from relaax_zmq.envs.wrapper_specs import parse_wrapper
from relaax_zmq.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|mps|cuda(:[0-9]+)?)$")


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Where experience comes from: the client runner and its environment sessions."""

    run: RunnerSpec = option(RunnerSpec("gym"), doc="client runner")
    name: str | None = option(None, doc="gymnasium id; required when run is gym")
    clients: int = option(1, ge=1, doc="environment sessions to run")
    vectorized: bool = option(False, doc="one process drives all sessions, batched")
    blocks: int = option(
        1,
        ge=1,
        doc="vectorized: sessions split into this many batched blocks (at most one per "
        "session), stepped concurrently (a process each), so one block's environments step "
        "while another's actions are computed",
    )
    seed: int | None = option(None, ge=0, doc="base seed; session i uses seed + i")
    max_episodes: int | None = option(None, ge=1, doc="episodes per session, then stop")
    max_episode_steps: int | None = option(None, ge=1, doc="truncate episodes at this length")
    episode_timeout: float | None = option(None, gt=0, doc="truncate episodes after seconds")
    exploit: bool = option(False, doc="act with the trained policy, send no experience")
    env_kwargs: dict[str, Any] = option(factory=dict, doc="keyword arguments of the env")
    wrappers: list[str] = option(
        factory=list, doc="preprocessing after make: atari, frame_stack:N, select:I,J, clip_reward"
    )

    def validate_config(self, path: str) -> None:
        for i, spec in enumerate(self.wrappers):
            try:
                parse_wrapper(spec)
            except ValueError as exc:
                raise ConfigError(f"{key_path(path, 'wrappers')}[{i}]", str(exc)) from None
        if self.run == "gym" and not self.name:
            raise ConfigError(
                key_path(path, "name"), "required when run is 'gym' (a gymnasium id: CartPole-v1)"
            )
        if self.blocks > 1 and not self.vectorized:
            raise ConfigError(
                key_path(path, "blocks"), f"expected 1 unless vectorized is true, got {self.blocks}"
            )

    def block_sessions(self) -> list[range]:
        """The session indices of each block (vectorized): ``blocks`` near-equal ranges, at
        most one per session."""
        count = min(self.blocks, self.clients)
        size, extra = divmod(self.clients, count)
        bounds = [0]
        for b in range(count):
            bounds.append(bounds[-1] + size + (b < extra))
        return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]


@dataclass(frozen=True, kw_only=True)
class BrokerConfig:
    """The broker: endpoints, liveness, admission and the clients' retry policy."""

    frontend: ZmqEndpoint = option(ZmqEndpoint("tcp://127.0.0.1:7000"), doc="clients")
    backend: ZmqEndpoint = option(ZmqEndpoint("tcp://127.0.0.1:7001"), doc="workers")
    admin: ZmqEndpoint = option(ZmqEndpoint("tcp://127.0.0.1:7002"), doc="status, control")
    heartbeat_interval: float = option(1.0, gt=0, doc="seconds between heartbeats")
    heartbeat_liveness: int = option(3, ge=1, doc="missed heartbeats before a peer is dead")
    max_message_bytes: int | None = option(None, ge=1024, doc="cap on a client message")
    min_free_memory_mib: int = option(256, ge=0, doc="refuse sessions below this free memory")
    max_sessions_per_worker: int | None = option(None, ge=1, doc="cap over workers' own")
    rebalance_timeout: float | None = option(None, gt=0, doc="re-home at episode end after")
    session_idle_timeout: float | None = option(600.0, gt=0, doc="drop silent sessions after")
    client_request_timeout: float = option(10.0, gt=0, doc="client waits this long, retries")
    retry_backoff_initial: float = option(0.1, gt=0, doc="first client retry delay")
    retry_backoff_max: float = option(10.0, gt=0, doc="longest client retry delay")
    peer_refusal_rate: float = option(
        20.0, gt=0, doc="refusals a client connection may earn per second (budget refill)"
    )
    peer_refusal_burst: int = option(
        16, ge=1, doc="refusals at once, each 1 + its size / 32 KiB; one more closes it"
    )

    def validate_config(self, path: str) -> None:
        seen: dict[str, str] = {}
        for name in ("frontend", "backend", "admin"):
            endpoint = getattr(self, name)
            if endpoint in seen:
                raise ConfigError(key_path(path, name), f"{endpoint!r} is also {seen[endpoint]}")
            seen[endpoint] = key_path(path, name)
        if self.rebalance_timeout is not None and self.rebalance_timeout <= self.heartbeat_interval:
            raise ConfigError(
                key_path(path, "rebalance_timeout"),
                f"expected a number > {key_path(path, 'heartbeat_interval')} "
                f"({self.heartbeat_interval}), got {self.rebalance_timeout}",
            )
        if self.retry_backoff_max < self.retry_backoff_initial:
            raise ConfigError(
                key_path(path, "retry_backoff_max"),
                f"expected a number >= {key_path(path, 'retry_backoff_initial')} "
                f"({self.retry_backoff_initial}), got {self.retry_backoff_max}",
            )


@dataclass(frozen=True, kw_only=True)
class WorkersConfig:
    """Worker processes: capacity, inference batching and compute device."""

    count: int = option(1, ge=1, doc="worker processes on this host")
    max_sessions: int = option(256, ge=1, doc="sessions one worker hosts")
    max_batch: int = option(64, ge=1, doc="most sessions in one forward pass")
    max_batch_wait_ms: float = option(0.0, ge=0, doc="wait to fill a batch, milliseconds")
    device: str = option("cpu", doc="torch device: cpu, cuda, cuda:N or mps")
    torch_threads: int | None = option(1, ge=1, doc="torch threads per worker; null: torch")

    def validate_config(self, path: str) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(
                key_path(path, "device"), f"expected cpu, cuda, cuda:N or mps, got {self.device!r}"
            )


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """The metrics collector, the TensorBoard event files it writes and the trackers it feeds."""

    endpoint: ZmqEndpoint = option(ZmqEndpoint("tcp://127.0.0.1:7003"), doc="collector PULL")
    logdir: Path = option(Path("logs/metrics"), doc="TensorBoard event files")
    flush_interval: float = option(10.0, gt=0, doc="seconds between flushes to disk")
    enabled: tuple[str, ...] | None = option(None, doc="record only these; null: all")
    disabled: tuple[str, ...] = option((), doc="never record these")
    log_to_console: bool = option(False, doc="also log each metric to stdout")
    mlflow: MlflowConfig | None = option(None, doc="also send scalars to MLflow; null: off")
    wandb: WandbConfig | None = option(None, doc="also send scalars to W&B; null: off")

    def validate_config(self, path: str) -> None:
        for name in ("enabled", "disabled"):
            for i, metric in enumerate(getattr(self, name) or ()):
                if not metric.strip():
                    raise ConfigError(f"{key_path(path, name)}[{i}]", "expected a metric name")
        for i, metric in enumerate(self.disabled):
            if metric in (self.enabled or ()):
                raise ConfigError(
                    f"{key_path(path, 'disabled')}[{i}]",
                    f"{metric!r} is also in {key_path(path, 'enabled')}; "
                    "a metric is one or the other",
                )


@dataclass(frozen=True, kw_only=True)
class AlgorithmConfig:
    """Which algorithm learns; ``config`` is checked later by the algorithm's own dataclass."""

    name: str | None = option(None, doc="installed algorithm (entry point)")
    path: Path | None = option(None, doc="app-local algorithm folder")
    config: dict[str, Any] = option(factory=dict, doc="hyperparameters of the algorithm")

    def validate_config(self, path: str) -> None:
        if (self.name is None) == (self.path is None):
            got = "both" if self.name is not None else "neither"
            raise ConfigError(path, f"expected exactly one of name or path, got {got}")
        from relaax_zmq.runtime.registry import algorithm_names  # it reads this module

        if self.name is not None and self.name not in algorithm_names():
            choices = ", ".join(algorithm_names())
            raise ConfigError(
                key_path(path, "name"), f"expected one of {choices}, got {self.name!r}"
            )
        if self.path is not None and not self.path.is_dir():
            raise ConfigError(
                key_path(path, "path"), f"expected an existing folder, got {str(self.path)!r}"
            )


@dataclass(frozen=True, kw_only=True)
class ProtocolConfig:
    """RLX limits every decoder enforces before it allocates."""

    max_elements: int = option(1 << 28, ge=1, le=1 << 62, doc="elements in one tensor")
    max_tensors: int = option(64, ge=1, le=0xFFFF, doc="tensors in one message")
    max_sessions: int = option(4096, ge=1, le=0xFFFFFFFF, doc="sessions in one message")
    max_message_bytes: int = option(1 << 30, ge=1024, doc="bytes in one message")

    def limits(self) -> Any:
        """These limits as the codec's ``relaax_zmq.protocol.limits.Limits``."""
        from relaax_zmq.protocol.limits import Limits

        return Limits(
            max_elements=self.max_elements,
            max_tensors=self.max_tensors,
            max_sessions=self.max_sessions,
        )


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """CURVE encryption and authentication; it fails closed: no keys, no start (docs/security.md)."""

    curve: bool = option(False, doc="encrypt and authenticate every socket")
    keys_dir: Path | None = option(None, doc="key pairs and allowed public keys")
    key_names: dict[str, str] = option(
        factory=dict, doc="key pair name per role (broker, shard, metrics, client, worker, admin)"
    )
    reload_interval: float = option(1.0, gt=0, doc="seconds between checks of the key files")

    def key_name(self, role: str) -> str:
        """The name of ``role``'s key pair: ``key_names[role]``, else the role itself."""
        return self.key_names.get(role, role)

    def validate_config(self, path: str) -> None:
        from relaax_zmq.security.keys import ROLES, check_name

        where = key_path(path, "keys_dir")
        if self.curve and self.keys_dir is None:
            raise ConfigError(where, f"required when {key_path(path, 'curve')} is true")
        if self.curve and self.keys_dir is not None and not self.keys_dir.is_dir():
            raise ConfigError(where, f"expected an existing folder, got {str(self.keys_dir)!r}")
        for role, name in self.key_names.items():
            entry = f"{key_path(path, 'key_names')}.{role}"
            if role not in ROLES:
                raise ConfigError(entry, f"expected a role ({', '.join(ROLES)}), got {role!r}")
            try:
                check_name(str(name))
            except ValueError as exc:
                raise ConfigError(entry, str(exc)) from None
