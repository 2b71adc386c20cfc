"""The algorithm's parameter-server spec, built from the app config the same way everywhere."""

from __future__ import annotations

from relaax_zmq.algorithm_loader import load_parameter_server
from relaax_zmq.config import AppConfig
from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec


def load_spec(config: AppConfig, shard: int | None = None) -> ParameterServerSpec | None:
    """``make_parameter_server`` of ``config.algorithm``; None when it has no such module.

    The context's seed is ``environment.seed`` (0 when null), so that every shard
    and worker builds the same initial vector.
    """
    context = ParameterServerContext(
        config=config.algorithm.config,
        seed=initial_seed(config),
        shard=shard,
        shards=config.parameter_servers.shards,
    )
    return load_parameter_server(config.algorithm, context)


def initial_seed(config: AppConfig) -> int:
    """The seed of ``initial_parameters``: ``environment.seed``, or 0 when it is null."""
    return config.environment.seed or 0
