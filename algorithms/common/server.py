"""The parameter-server side of a torch algorithm, from its model builder and config sections."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from relaax_zmq.learner import OptimizerSpec, ParameterServerSpec, ParamGroup

from .config import InputConfig, OptimizerConfig
from .flat import initial_vector, param_count
from .normalizer import RunningMeanStd
from .schedules import Constant


def torch_parameter_server(
    build_model: Callable[[], nn.Module],
    optimizer: OptimizerConfig,
    input: InputConfig,
    *,
    seed: int = 0,
    groups: Sequence[ParamGroup] = (),
    allow_mixed_versions: bool = False,
) -> ParameterServerSpec:
    """A ``ParameterServerSpec`` whose vector is ``build_model()``'s parameters.

    ``initial_parameters(app_seed)`` builds the model under the seed
    ``(app_seed, seed)``: the same vector in every process. The learning rate follows
    ``optimizer.learning_rate`` (a schedule over the global step); the shared statistics
    hold the observation normaliser's sums when ``input.normalize``.
    """
    count = param_count(build_model())
    schedule = optimizer.schedule()
    statistics = RunningMeanStd.vector_size(input.shape) if input.normalize else 0
    return ParameterServerSpec(
        param_count=count,
        initial_parameters=lambda app_seed: initial_vector(build_model, [app_seed, seed]),
        optimizer=OptimizerSpec(
            optimizer.name,
            optimizer.hyperparameters(),
            lr_schedule=None if isinstance(schedule, Constant) else schedule,
            groups=tuple(groups),
        ),
        allow_mixed_versions=allow_mixed_versions,
        statistics_size=statistics,
    )
