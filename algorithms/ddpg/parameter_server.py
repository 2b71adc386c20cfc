"""The parameter-server side of ``ddpg``: actor and critic in one vector, the actor's range
learning at ``actor_lr_scale`` times the optimizer's rate."""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import parse_config
from ..common.server import torch_parameter_server
from .config import DDPGConfig
from .model import build_model, param_groups


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(DDPGConfig, context.config, "ddpg")
    return torch_parameter_server(
        lambda: build_model(config),
        config.optimizer,
        config.input,
        groups=param_groups(config),
        allow_mixed_versions=True,
    )
