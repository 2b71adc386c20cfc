"""The parameter-server side of ``trpo``: the policy-and-value vector, SGD at rate 1.0 on deltas."""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import DELTA_OPTIMIZER, parse_config
from ..common.server import torch_parameter_server
from .agent import build_model
from .config import TRPOConfig


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(TRPOConfig, context.config, "trpo")
    return torch_parameter_server(lambda: build_model(config), DELTA_OPTIMIZER, config.input)
