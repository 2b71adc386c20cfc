"""The parameter-server side of ``cem``: the search distribution's [mean, log_std], SGD at 1.0."""

from __future__ import annotations

from relaax_zmq.learner import ParameterServerContext, ParameterServerSpec

from ..common.config import DELTA_OPTIMIZER, parse_config
from ..common.server import torch_parameter_server
from .agent import build_model
from .config import CEMConfig


def make_parameter_server(context: ParameterServerContext) -> ParameterServerSpec:
    config = parse_config(CEMConfig, context.config, "cem")
    return torch_parameter_server(
        lambda: build_model(config), DELTA_OPTIMIZER, config.input, allow_mixed_versions=True
    )
