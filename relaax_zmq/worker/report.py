"""The worker's metrics: its own figures once per heartbeat, the clients' METRICS as they come.

Each heartbeat the worker sends steps per second, sessions, the mean batch size
and the action latency from a request's arrival to its reply, with what the
agent recorded in ``AgentContext.metrics``. The clients' METRICS go on to the
collector; their ``checkpoint.best_metric`` values (episode reward by default)
make the worker's score, which its heartbeats to the shards carry.
"""

from __future__ import annotations

from typing import Any

from relaax_zmq.metrics import MetricsSender, ScoreWindow, SessionMetricsSink, names
from relaax_zmq.ps.client import ParameterClient
from relaax_zmq.worker.host import SessionHost


class WorkerReport:
    """What one worker tells the metrics collector (see the module docstring)."""

    def __init__(self, metrics: MetricsSender, best_metric: str, now: float) -> None:
        self.metrics = metrics
        #: the clients' recent ``checkpoint.best_metric`` values
        self.score = ScoreWindow(best_metric)
        self._clients = SessionMetricsSink(metrics)
        self._metered = (now, 0, 0)  # (when, steps, batches) at the last report

    def client_metrics(
        self, session_id: int, scalars: dict[str, float], histograms: dict[str, Any]
    ) -> None:
        """A ``SessionHost`` metrics sink: one client METRICS message."""
        self.score.observe(scalars)
        self._clients(session_id, scalars, histograms)

    def heartbeat(
        self,
        now: float,
        host: SessionHost,
        latency: float | None,
        parameters: ParameterClient | None,
    ) -> None:
        """The figures since the last call (``latency``: the mean, seconds), then a flush."""
        m = self.metrics
        since, steps_then, batches_then = self._metered
        steps, batches = host.counters.steps, host.counters.batches
        self._metered = (now, steps, batches)
        if now > since:
            m.scalar(names.STEPS_PER_SECOND, (steps - steps_then) / (now - since))
        if batches > batches_then:
            m.scalar(names.BATCH_SIZE, (steps - steps_then) / (batches - batches_then))
        m.scalar(names.SESSIONS, host.sessions)
        if latency is not None:
            m.scalar(names.ACTION_LATENCY_SERVER_MS, latency * 1000.0)
        step = steps
        if parameters is not None:
            parameters.score = self.score.mean
            step = parameters.global_step
        m.flush(step)
