"""The parameter-server side of ``linear_pg``: vector length, initial weights, optimizer."""

from __future__ import annotations

import numpy as np

from relaax_zmq.core import OptimizerSpec, ParameterServerContext, ParameterServerSpec

from .config import LinearPGConfig


def linear_pg_server(
    config: LinearPGConfig, context: ParameterServerContext
) -> ParameterServerSpec:
    """Small normal initial weights (seeded by ``seed`` and the app's seed)."""

    def initial_parameters(seed: int) -> np.ndarray:
        rng = np.random.default_rng([config.seed, seed])
        values = rng.normal(0.0, config.init_scale, config.param_count)
        return values.astype(np.float32)

    return ParameterServerSpec(
        param_count=config.param_count,
        initial_parameters=initial_parameters,
        optimizer=OptimizerSpec(config.optimizer, {"lr": config.learning_rate}),
        allow_mixed_versions=True,  # a linear policy takes any mix of recent slices
    )
