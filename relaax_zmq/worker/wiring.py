"""What a worker builds before its agent: the parameter link and, for an algorithm with a
central learner, the experience link its actors ship to (``relaax_zmq.core.AgentContext``)."""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from relaax_zmq.config import AppConfig
from relaax_zmq.core import Agent, AgentContext, MetricsRecorder
from relaax_zmq.learner.sink import ExperienceLink
from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.ps.plugin import load_spec
from relaax_zmq.runtime.registry import experience_target, load_algorithm


@dataclass
class AgentParts:
    """A built agent and the links it was given (the worker closes them)."""

    agent: Agent
    parameters: ParameterClient | None
    experience: ExperienceLink | None

    def close(self) -> None:
        if self.experience is not None:
            self.experience.close()
        if self.parameters is not None:
            self.parameters.close()


def build_agent(
    config: AppConfig,
    name: str,
    zmq_context: zmq.Context,
    metrics: MetricsRecorder | None,
    *,
    inproc: bool = False,
) -> AgentParts:
    """The configured algorithm's agent for worker ``name``, with its links."""
    spec = load_spec(config)
    parameters = experience = None
    try:
        if spec is not None:
            parameters = ParameterClient(
                config,
                spec.param_count,
                name,
                context=zmq_context,
                allow_mixed_versions=spec.allow_mixed_versions,
                statistics_size=spec.statistics_size,
                inproc=inproc,
            )
        target = experience_target(config.algorithm)
        if target is not None:
            source = f"worker-{name}"
            experience = ExperienceLink(config, target, source, zmq_context, inproc=inproc)  # type: ignore[arg-type]
        context = AgentContext(
            config=config.algorithm.config,
            worker_id=name,
            device=config.workers.device,
            seed=config.environment.seed,
            max_batch=config.workers.max_batch,
            parameters=parameters,
            metrics=metrics,
            experience=experience,
        )
        agent = load_algorithm(config.algorithm).make_agent(context)
    except BaseException:
        AgentParts(None, parameters, experience).close()  # type: ignore[arg-type]
        raise
    return AgentParts(agent, parameters, experience)
