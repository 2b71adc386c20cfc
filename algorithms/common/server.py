"""The parameter-server side of a torch algorithm, derived from its declaration.

``torch_algorithm`` declares an algorithm whose shards serve ``model(config)``'s
parameters: the vector, its seeded initial values, the optimizer of the config's
``optimizer`` section (its learning-rate schedule over the global step), the
observation normaliser's sums as shared statistics when ``input.normalize``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from torch import nn

from relaax_zmq.core import (
    Agent,
    AgentContext,
    Algorithm,
    OptimizerSpec,
    ParameterServerContext,
    ParameterServerSpec,
    ParamGroup,
)
from relaax_zmq.core_learner import Learner, LearnerContext

from .config import InputConfig, OptimizerConfig
from .flat import initial_vector, param_count
from .normalizer import RunningMeanStd
from .schedules import Constant

C = TypeVar("C")


def torch_parameter_server(
    build_model: Callable[[], nn.Module],
    optimizer: OptimizerConfig,
    input: InputConfig,
    *,
    groups: Sequence[ParamGroup] = (),
    allow_mixed_versions: bool = False,
) -> ParameterServerSpec:
    """A ``ParameterServerSpec`` whose vector is ``build_model()``'s parameters.

    ``initial_parameters(app_seed)`` builds the model under ``app_seed``: the same
    vector in every process.
    """
    count = param_count(build_model())
    schedule = optimizer.schedule()
    statistics = RunningMeanStd.vector_size(input.shape) if input.normalize else 0
    return ParameterServerSpec(
        param_count=count,
        initial_parameters=lambda app_seed: initial_vector(build_model, [app_seed, 0]),
        optimizer=OptimizerSpec(
            optimizer.name,
            optimizer.hyperparameters(),
            lr_schedule=None if isinstance(schedule, Constant) else schedule,
            groups=tuple(groups),
        ),
        allow_mixed_versions=allow_mixed_versions,
        statistics_size=statistics,
    )


def torch_algorithm(
    name: str,
    config: type[C],
    agent: Callable[[AgentContext, C], Agent],
    model: Callable[[C], nn.Module],
    *,
    optimizer: Callable[[C], OptimizerConfig] | None = None,
    groups: Callable[[C], Sequence[ParamGroup]] | None = None,
    allow_mixed_versions: bool = False,
    learner: Callable[[LearnerContext, C], Learner] | None = None,
) -> Algorithm[C]:
    """Declare a torch algorithm whose config has ``input`` and ``optimizer`` sections.

    ``optimizer``: the shards' optimizer when it is not ``config.optimizer``
    (``DELTA_OPTIMIZER`` for algorithms that push weight deltas); ``groups``: ranges
    of the vector with their own learning-rate scale; ``allow_mixed_versions``: see
    ``ParameterServerSpec``; ``learner``: the central learner's side, for an algorithm
    whose agents are actors (``relaax_zmq.core.Learner``).
    """

    def parameter_server(c: Any, context: ParameterServerContext) -> ParameterServerSpec:
        return torch_parameter_server(
            lambda: model(c),
            optimizer(c) if optimizer is not None else c.optimizer,
            c.input,
            groups=groups(c) if groups is not None else (),
            allow_mixed_versions=allow_mixed_versions,
        )

    return Algorithm(name, config, agent, parameter_server, model, learner)
