"""App configuration: one YAML file, loaded into typed, frozen dataclasses.

>>> config = load_config("conf/app.yaml")          # doctest: +SKIP
>>> config.broker.heartbeat_interval                # doctest: +SKIP
1.0

Every error is a ``relaax_zmq.errors.ConfigError`` naming the key's full dotted
path (``broker.heartbeat_interval: expected a number > 0, got -1``).
``from_mapping`` is the same converter for any dataclass, such as an algorithm's
hyperparameters (``from_mapping(DA3CConfig, config.algorithm.config, "algorithm.config")``).
docs/config.md is the reference of every key.
"""

from relaax_zmq.config.app import AppConfig
from relaax_zmq.config.convert import config_fields, convert, from_mapping, option
from relaax_zmq.config.describe import key_path
from relaax_zmq.config.loader import (
    apply_overrides,
    dump_config,
    load_config,
    parse_config,
    to_mapping,
)
from relaax_zmq.config.parameter_servers import (
    CheckpointConfig,
    ParameterServersConfig,
    S3Config,
    ShardEndpoints,
)
from relaax_zmq.config.sections import (
    AlgorithmConfig,
    BrokerConfig,
    EnvironmentConfig,
    MetricsConfig,
    ProtocolConfig,
    SecurityConfig,
    WorkersConfig,
)
from relaax_zmq.config.values import BUILTIN_RUNNERS, RunnerSpec, ZmqEndpoint

__all__ = [
    "BUILTIN_RUNNERS",
    "AlgorithmConfig",
    "AppConfig",
    "BrokerConfig",
    "CheckpointConfig",
    "EnvironmentConfig",
    "MetricsConfig",
    "ParameterServersConfig",
    "ProtocolConfig",
    "RunnerSpec",
    "S3Config",
    "SecurityConfig",
    "ShardEndpoints",
    "WorkersConfig",
    "ZmqEndpoint",
    "apply_overrides",
    "config_fields",
    "convert",
    "dump_config",
    "from_mapping",
    "key_path",
    "load_config",
    "option",
    "parse_config",
    "to_mapping",
]
