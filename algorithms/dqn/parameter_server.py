"""The parameter-server side of ``dqn``: the online Q network's vector."""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import parse_config
from ..common.server import torch_parameter_server
from .agent import build_model
from .config import DqnConfig


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(DqnConfig, context.config, "dqn")
    return torch_parameter_server(
        lambda: build_model(config),
        config.optimizer,
        config.input,
        allow_mixed_versions=True,
    )
