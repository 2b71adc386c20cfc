"""``SessionMetricsSink``: forward the metrics clients send to a worker on to the collector."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from relaax_zmq.metrics.sender import MetricsSender

log = logging.getLogger(__name__)


class SessionMetricsSink:
    """A ``SessionHost(metrics_sink=...)`` callback: each client METRICS message becomes one batch.

    The batch's source is ``client-<session_id>`` (the block's id; kind ``client``) and its step
    ``step()`` when given (a global step), else null: the collector then numbers each tag's
    values in arrival order (the n-th ``episode_reward`` of the whole app). The sender's
    filters apply. Never raises: a failure is logged and counted by the sender.
    """

    def __init__(
        self,
        sender: MetricsSender,
        *,
        step: Callable[[], int | None] | None = None,
        kind: str = "client",
    ) -> None:
        self.sender = sender
        self.step = step
        self.kind = kind

    def __call__(
        self, session_id: int, scalars: dict[str, float], histograms: dict[str, np.ndarray]
    ) -> None:
        try:
            step = None if self.step is None else self.step()
            self.sender.send(
                scalars,
                histograms,
                step=step,
                source=f"{self.kind}-{session_id}",
                session_id=session_id,
            )
        except Exception:
            log.exception("forwarding the metrics of session %d failed", session_id)
