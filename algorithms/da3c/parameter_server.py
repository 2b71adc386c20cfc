"""The parameter-server side of ``da3c``: the actor-critic's vector, updated asynchronously.

``allow_mixed_versions=True``: A3C applies gradients computed on stale weights anyway, so
a worker may act and compute gradients on weights whose shards differ in version.
"""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import parse_config
from ..common.server import torch_parameter_server
from .agent import build_model
from .config import DA3CConfig


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(DA3CConfig, context.config, "da3c")
    return torch_parameter_server(
        lambda: build_model(config),
        config.optimizer,
        config.input,
        allow_mixed_versions=True,
    )
