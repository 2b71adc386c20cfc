"""The algorithm's parameter-server spec, built from the app config the same way everywhere."""

from __future__ import annotations

from relaax_zmq.config import AppConfig
from relaax_zmq.core import ParameterServerContext, ParameterServerSpec
from relaax_zmq.runtime.registry import load_parameter_server


def load_spec(config: AppConfig, shard: int | None = None) -> ParameterServerSpec | None:
    """The parameter-server side of ``config.algorithm``; None when it needs no shards.

    The context's seed is ``environment.seed`` (0 when null), so that every shard
    and worker builds the same initial vector.
    """
    context = ParameterServerContext(
        seed=initial_seed(config),
        shard=shard,
        shards=config.parameter_servers.shards,
    )
    return load_parameter_server(config.algorithm, context)


def initial_seed(config: AppConfig) -> int:
    """The seed of ``initial_parameters``: ``environment.seed``, or 0 when it is null."""
    return config.environment.seed or 0
