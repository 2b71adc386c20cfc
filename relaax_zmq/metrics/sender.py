"""``MetricsSender``: buffer metrics, then send them to the collector, one batch per step.

Sending never blocks: the PUSH socket queues at most ``hwm`` batches while the collector is
away or slow, and a batch that does not fit is dropped and counted (training never waits for
metrics). Metrics that ``enabled``/``disabled`` filter out are never buffered. A sender belongs
to one thread (ZeroMQ sockets are not thread-safe).
"""

from __future__ import annotations

import dataclasses
import logging
import operator
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zmq

from relaax_zmq.errors import ProtocolError
from relaax_zmq.metrics.filters import MetricFilter
from relaax_zmq.metrics.wire import SENDER_HWM, check_source, encode_batch, sender_spec, source_kind
from relaax_zmq.protocol.limits import DEFAULT_LIMITS, Limits
from relaax_zmq.runtime.sockets import (
    METRICS_MAX_MESSAGE_BYTES,
    metrics_message_limit,
    open_socket,
    socket_map,
)
from relaax_zmq.security import CurveSpec

log = logging.getLogger(__name__)

#: Drops are logged the first time and then once per this many.
_LOG_EVERY = 1000


@dataclass
class _Pending:
    scalars: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass
class SenderCounters:
    """What a sender counts (its ``stats`` show every field by name)."""

    sent: int = 0  # batches handed to the socket
    dropped: int = 0  # batches dropped: closed, too large, unencodable or the queue full
    metrics: int = 0  # metrics in the batches sent
    dropped_metrics: int = 0  # ... in the batches dropped
    filtered: int = 0  # metrics that the filters kept out


class MetricsSender:
    """Scalars and histograms for the collector at ``endpoint``, sent by ``flush``.

    Args:
        endpoint: the collector's PULL endpoint (``metrics.endpoint``).
        source: who sends: ``<kind>-<instance>`` such as ``worker-0``, ``ps-1``, ``client-3``.
        enabled: record only these names (or ``kind/name`` tags); None: all.
        disabled: never record these names (or tags).
        context: ZeroMQ context (default: the process-wide instance).
        hwm: batches queued for the collector before new ones are dropped.
        max_message_bytes: a larger batch is dropped.
        limits: RLX limits of the encoder.
        curve: CURVE keys of the socket (``security.curve``); None: plaintext.
    """

    def __init__(
        self,
        endpoint: str,
        source: str,
        *,
        enabled: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
        context: zmq.Context | None = None,
        hwm: int = SENDER_HWM,
        max_message_bytes: int = METRICS_MAX_MESSAGE_BYTES,
        limits: Limits = DEFAULT_LIMITS,
        curve: CurveSpec | None = None,
    ) -> None:
        self.source = check_source(source)
        self.kind = source_kind(source)
        self.filter = MetricFilter(enabled, disabled)
        self.limits = limits
        self.max_message_bytes = max_message_bytes
        #: Flushes so far: the step of metrics given without one when ``flush`` gets none.
        self.flush_count = 0
        self.counters = SenderCounters()
        self._pending: dict[int | None, _Pending] = {}
        spec = sender_spec(endpoint, hwm=hwm, max_message_bytes=max_message_bytes)
        spec = dataclasses.replace(spec, curve=curve)
        self._socket: zmq.Socket | None = open_socket(context or zmq.Context.instance(), spec)

    @classmethod
    def from_config(cls, config: Any, source: str, **kwargs: Any) -> MetricsSender:
        """A sender for the app's collector (``config`` is an ``AppConfig``), its filters and limits."""
        m = config.metrics
        kwargs.setdefault("enabled", m.enabled)
        kwargs.setdefault("disabled", m.disabled)
        kwargs.setdefault("limits", config.protocol.limits())
        kwargs.setdefault("max_message_bytes", metrics_message_limit(config))
        kind = source_kind(check_source(source))
        kwargs.setdefault("curve", socket_map(config)[f"{kind}.metrics"].curve)
        return cls(str(m.endpoint), source, **kwargs)

    # -- recording ------------------------------------------------------------------------------

    def scalar(self, name: str, value: float, step: int | None = None) -> None:
        """Record a scalar for ``step`` (None: the step ``flush`` gives); the last value wins."""
        if self._allowed(name):
            self._slot(step).scalars[name] = float(value)

    def histogram(self, name: str, values: Any, step: int | None = None) -> None:
        """Record histogram values for ``step`` (None: the step ``flush`` gives); they accumulate.

        ``values``: anything numpy takes, or a torch tensor (detached and moved to the CPU).
        """
        if self._allowed(name):
            arr = _as_float64(values)
            self._slot(step).histograms.setdefault(name, []).append(arr)

    def __len__(self) -> int:
        """Metrics waiting for the next flush."""
        return sum(len(p.scalars) + len(p.histograms) for p in self._pending.values())

    # -- sending --------------------------------------------------------------------------------

    def flush(self, step: int | None = None) -> int:
        """Send everything buffered, one batch per step; the number of batches sent.

        Metrics recorded without a step get ``step``, or when it is None the sender's counter
        ``flush_count`` (0 at the first flush, then 1, ...). The buffer is emptied either way.
        """
        default = self.flush_count if step is None else _check_step(step)
        self.flush_count += 1
        pending, self._pending = self._pending, {}
        merged: dict[int, _Pending] = {}
        for key, slot in pending.items():
            target = merged.setdefault(default if key is None else key, _Pending())
            target.scalars.update(slot.scalars)
            for name, parts in slot.histograms.items():
                target.histograms.setdefault(name, []).extend(parts)
        sent = 0
        for batch_step in sorted(merged):
            slot = merged[batch_step]
            histograms = {k: np.concatenate(v) for k, v in slot.histograms.items()}
            sent += self._send(slot.scalars, histograms, batch_step, self.source, 0)
        return sent

    def send(
        self,
        scalars: Mapping[str, float] | None = None,
        histograms: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        source: str | None = None,
        session_id: int = 0,
    ) -> bool:
        """Send one batch now, bypassing the buffer (filters still apply); True when queued.

        ``source`` overrides the sender's (a worker forwarding a client's metrics); ``step``
        None leaves the numbering to the collector.
        """
        source = self.source if source is None else check_source(source)
        kind = source_kind(source)
        kept_scalars: dict[str, float] = {}
        kept_histograms: dict[str, np.ndarray] = {}
        for name, value in (scalars or {}).items():
            if self._allowed(name, kind):
                kept_scalars[name] = float(value)
        for name, values in (histograms or {}).items():
            if self._allowed(name, kind):
                kept_histograms[name] = _as_float64(values)
        batch_step = None if step is None else _check_step(step)
        return self._send(kept_scalars, kept_histograms, batch_step, source, session_id)

    def stats(self) -> dict[str, int]:
        """Counters: batches ``sent`` and ``dropped``, ``metrics`` sent, ``dropped_metrics``,
        ``filtered`` (metrics the filters kept out), ``pending`` (waiting for a flush)."""
        return {**asdict(self.counters), "pending": len(self)}

    def close(self, linger: float = 0.5) -> None:
        """Close the socket; queued batches get ``linger`` seconds to leave. Idempotent."""
        if self._socket is not None:
            self._socket.close(linger=int(linger * 1000))
            self._socket = None

    def __enter__(self) -> MetricsSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _allowed(self, name: str, kind: str | None = None) -> bool:
        if not isinstance(name, str) or not name or "\n" in name:
            raise ValueError(f"expected a non-empty metric name without newlines, got {name!r}")
        if self.filter.allows(name, self.kind if kind is None else kind):
            return True
        self.counters.filtered += 1
        return False

    def _slot(self, step: int | None) -> _Pending:
        key = None if step is None else _check_step(step)
        slot = self._pending.get(key)
        if slot is None:
            slot = self._pending[key] = _Pending()
        return slot

    def _send(
        self,
        scalars: dict[str, float],
        histograms: dict[str, np.ndarray],
        step: int | None,
        source: str,
        session_id: int,
    ) -> bool:
        count = len(scalars) + len(histograms)
        if count == 0:
            return False
        if self._socket is None:
            return self._drop(count, "the sender is closed")
        try:
            frames = encode_batch(
                source, step, scalars, histograms, session_id=session_id, limits=self.limits
            )
        except (ProtocolError, ValueError, OverflowError) as exc:
            return self._drop(count, f"cannot encode the batch: {exc}")
        size = sum(memoryview(f).nbytes for f in frames)
        if size > self.max_message_bytes:
            return self._drop(count, f"{size} bytes > max_message_bytes {self.max_message_bytes}")
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return self._drop(count, "the collector is away or slow (queue full)")
        except zmq.ZMQError as exc:
            return self._drop(count, f"send failed: {exc}")
        self.counters.sent += 1
        self.counters.metrics += count
        return True

    def _drop(self, count: int, why: str) -> bool:
        self.counters.dropped += 1
        self.counters.dropped_metrics += count
        dropped = self.counters.dropped
        if dropped == 1 or dropped % _LOG_EVERY == 0:
            log.warning(
                "%s: dropped a metrics batch (%d dropped so far): %s", self.source, dropped, why
            )
        return False


def _check_step(step: int) -> int:
    step = operator.index(step)
    if step < 0:
        raise ValueError(f"expected a step >= 0, got {step}")
    return step


def _as_float64(values: Any) -> np.ndarray:
    """A float64 copy of ``values``, flattened (a torch tensor is detached and moved to the CPU)."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()
    return np.array(values, dtype=np.float64).ravel()
