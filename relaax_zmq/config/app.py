"""The whole app config and the rules that span its sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from relaax_zmq.config.convert import option
from relaax_zmq.config.gateway import GatewayConfig
from relaax_zmq.config.learner import LearnerConfig, ReplayConfig
from relaax_zmq.config.operations import AutoscaleConfig, PrometheusConfig
from relaax_zmq.config.parameter_servers import ParameterServersConfig
from relaax_zmq.config.sections import (
    AlgorithmConfig,
    BrokerConfig,
    EnvironmentConfig,
    MetricsConfig,
    ProtocolConfig,
    SecurityConfig,
    WorkersConfig,
)
from relaax_zmq.config.values import check_port_ranges
from relaax_zmq.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """One app: what the YAML file says, typed, checked and frozen.

    ``app_dir`` (the YAML file's folder, against which relative paths were
    resolved) and ``source`` (the file name) are not YAML keys.
    """

    version: Literal[1] = option(1, doc="version of this config format")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = option("INFO", doc="daemons' log")
    bind_all_interfaces: bool = option(
        False, doc="bound tcp sockets listen on every interface at their endpoint's port"
    )
    environment: EnvironmentConfig = option(factory=EnvironmentConfig, doc="environment")
    broker: BrokerConfig = option(factory=BrokerConfig, doc="broker")
    workers: WorkersConfig = option(factory=WorkersConfig, doc="workers")
    parameter_servers: ParameterServersConfig = option(
        factory=ParameterServersConfig, doc="parameter servers"
    )
    learner: LearnerConfig = option(factory=LearnerConfig, doc="central learners (impala, appo)")
    replay: ReplayConfig = option(factory=ReplayConfig, doc="replay servers (apex)")
    metrics: MetricsConfig = option(factory=MetricsConfig, doc="metrics")
    algorithm: AlgorithmConfig = option(doc="algorithm (required)")
    protocol: ProtocolConfig = option(factory=ProtocolConfig, doc="protocol limits")
    gateway: GatewayConfig = option(factory=GatewayConfig, doc="WebSocket gateway")
    prometheus: PrometheusConfig = option(
        factory=PrometheusConfig, doc="Prometheus /metrics per daemon"
    )
    autoscale: AutoscaleConfig = option(factory=AutoscaleConfig, doc="worker autoscaler")
    security: SecurityConfig = option(factory=SecurityConfig, doc="security")
    app_dir: Path = field(default_factory=Path.cwd, metadata={"internal": True})
    source: str = field(default="<mapping>", metadata={"internal": True})

    @property
    def endpoints(self) -> dict[str, str]:
        """Every endpoint of the app by key path, shard endpoints included."""
        found = {
            "broker.frontend": str(self.broker.frontend),
            "broker.backend": str(self.broker.backend),
            "broker.admin": str(self.broker.admin),
            "metrics.endpoint": str(self.metrics.endpoint),
        }
        ps = self.parameter_servers
        for shard in range(ps.shards):
            found[f"parameter_servers[{shard}].gradients"] = ps.gradients_endpoint(shard)
            found[f"parameter_servers[{shard}].weights"] = ps.weights_endpoint(shard)
        for i in range(self.learner.count):
            found[f"learner[{i}].endpoint"] = self.learner.endpoint_of(i)
        for i in range(self.replay.shards):
            found[f"replay[{i}].insert"] = self.replay.insert_endpoint(i)
            found[f"replay[{i}].sample"] = self.replay.sample_endpoint(i)
        return found

    def _validate_blocks(self) -> None:
        env, limit = self.environment, self.protocol.max_sessions
        largest = max(len(sessions) for sessions in env.block_sessions())
        if env.vectorized and largest > limit:
            raise ConfigError(
                "environment.clients",
                f"a vectorized block sends its sessions in one message; expected at most "
                f"protocol.max_sessions ({limit}) per block, got {largest} "
                f"({env.clients} clients in {env.blocks} blocks)",
            )

    def validate_config(self, path: str) -> None:
        fixed = [
            (key, endpoint.port, endpoint.port)
            for key, endpoint in (
                ("broker.frontend", self.broker.frontend),
                ("broker.backend", self.broker.backend),
                ("broker.admin", self.broker.admin),
                ("metrics.endpoint", self.metrics.endpoint),
            )
            if endpoint.port is not None
        ]
        check_port_ranges(
            fixed
            + self.parameter_servers.port_ranges("parameter_servers")
            + self.learner.port_ranges("learner")
            + self.replay.port_ranges("replay")
        )
        if self.metrics.endpoint in (self.broker.frontend, self.broker.backend, self.broker.admin):
            raise ConfigError("metrics.endpoint", f"{self.metrics.endpoint!r} is a broker endpoint")
        self._validate_blocks()
        cap = self.broker.max_message_bytes
        if cap is not None and cap > self.protocol.max_message_bytes:
            raise ConfigError(
                "broker.max_message_bytes",
                f"expected an int <= protocol.max_message_bytes "
                f"({self.protocol.max_message_bytes}), got {cap}",
            )
