"""The parameter-server side of ``ppo``: the actor-critic's vector, stepped once per sync round."""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import parse_config
from ..common.server import torch_parameter_server
from .agent import build_model
from .config import PPOConfig


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(PPOConfig, context.config, "ppo")
    return torch_parameter_server(lambda: build_model(config), config.optimizer, config.input)
