"""The metrics collector: a PULL socket at ``metrics.endpoint`` into TensorBoard event files.

Every batch is checked (``wire.decode_batch``); a malformed one is logged, counted
(``malformed_<reason>``) and dropped. Each metric passing ``metrics.enabled``/``disabled`` is
written under the tag ``<kind>/<name>`` (``client/episode_reward``, ``worker/policy_loss``) at
the batch's step; a batch without a step numbers each tag's values in arrival order. Event
files go to ``metrics.logdir`` (one run folder), flushed every ``metrics.flush_interval``
seconds and when the collector stops. Every scalar also goes, with the same tag, step and
wall time, to the trackers ``metrics.mlflow`` and ``metrics.wandb`` enable (``tracking``): one
run each per collector start, flushed with the event files; a tracker's failure is logged and
counted (``sink_errors``), and the collector goes on.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import zmq

from relaax_zmq.metrics.events import HISTOGRAM_BINS, EventWriter, histogram_value, scalar_value
from relaax_zmq.metrics.filters import MetricFilter
from relaax_zmq.metrics.tracking import ScalarSink, open_sinks
from relaax_zmq.metrics.wire import Batch, BatchError, decode_batch
from relaax_zmq.runtime.daemon import StopFlag
from relaax_zmq.runtime.sockets import metrics_message_limit, open_socket, socket_map
from relaax_zmq.security import PeerGate, peer_gate

log = logging.getLogger(__name__)

#: Longest wait for a batch, so that a stop request is noticed quickly (seconds).
POLL_INTERVAL = 0.1
#: Batches taken in one go before the loop looks at the clock and the stop flag again.
DRAIN_LIMIT = 1000
#: Malformed batches are logged the first few times, then once per this many.
_LOG_FIRST, _LOG_EVERY = 10, 1000


@dataclass
class CollectorCounters:
    """What the collector counts (its ``stats`` show every field by name)."""

    received: int = 0  # batches taken from the socket
    recorded: int = 0  # ... written
    malformed: int = 0  # ... dropped by ``decode_batch``, in all
    malformed_frames: int = 0  # ... of them by reason (``BatchError.reason``)
    malformed_header: int = 0
    malformed_rlx: int = 0
    malformed_metrics: int = 0
    errors: int = 0  # batches that could not be written
    scalars: int = 0  # scalars written
    histograms: int = 0  # histograms written
    empty_histograms: int = 0  # histograms without a finite value (not written)
    filtered: int = 0  # metrics that ``metrics.enabled``/``disabled`` kept out
    flushes: int = 0  # event file flushes
    refused: int = 0  # batches from a key revoked after its handshake
    sink_errors: int = 0  # tracker (MLflow, W&B) calls that failed

    def count_malformed(self, reason: str) -> int:
        """One more malformed batch, for ``reason`` (frames, header, rlx or metrics); the total."""
        self.malformed += 1
        name = f"malformed_{reason}"
        setattr(self, name, getattr(self, name) + 1)
        return self.malformed


class Collector:
    """Receive metric batches and write them as TensorBoard events (see the module docstring).

    Args:
        config: the ``AppConfig`` (its ``metrics`` and ``protocol`` sections).
        context: ZeroMQ context (default: the process-wide instance).
        console: where ``metrics.log_to_console`` lines go (default: stdout).
        tag_prefix: file metrics under ``<kind>/<name>``; False: under the bare name.
        histogram_bins: buckets per histogram.
    """

    def __init__(
        self,
        config: Any,
        *,
        context: zmq.Context | None = None,
        console: TextIO | None = None,
        tag_prefix: bool = True,
        histogram_bins: int = HISTOGRAM_BINS,
    ) -> None:
        m = config.metrics
        self.metrics_config = m
        self.endpoint = str(m.endpoint)
        self.run_dir = Path(m.logdir)
        self.flush_interval = m.flush_interval
        self.filter = MetricFilter(m.enabled, m.disabled)
        self.limits = config.protocol.limits()
        self.max_message_bytes = metrics_message_limit(config)
        self.console = (console or sys.stdout) if m.log_to_console else None
        self.tag_prefix = tag_prefix
        self.histogram_bins = histogram_bins
        #: Set once the socket is bound and the event file exists.
        self.ready = threading.Event()
        self.counters = CollectorCounters()
        self._context = context
        self._spec = socket_map(config)["metrics.collector"]
        self._writer: EventWriter | None = None
        #: The trackers' sinks while running (``tracking.open_sinks``).
        self.sinks: list[ScalarSink] = []
        self._auto_steps: dict[str, int] = {}
        self._gate: PeerGate | None = None  # with CURVE: refuses keys revoked since handshake

    def run(self, stop: StopFlag) -> None:
        """Collect until ``stop`` is set; then take what already arrived, flush and close."""
        context = self._context or zmq.Context.instance()
        sock = open_socket(context, self._spec)
        self._gate = peer_gate(context, self._spec.name, self._spec.curve)
        try:
            self._writer = EventWriter(self.run_dir, flush_secs=self.flush_interval)
            try:
                self.sinks = open_sinks(self.metrics_config, self.run_dir.name)
                log.info("collecting metrics on %s into %s", self.endpoint, self.run_dir)
                self.ready.set()
                self._loop(sock, stop)
                self._drain(sock)
            finally:
                self._writer.close()
                self.counters.flushes += 1
                for sink in self.sinks:
                    self._to_sink(sink, "close")
                log.info("metrics collector stopped: %s", self.stats())
        finally:
            sock.close(0)

    def stats(self) -> dict[str, int]:
        """The counters: batches received, recorded, malformed (by reason), metrics written..."""
        return asdict(self.counters)

    # -- internals ----------------------------------------------------------------------------

    def _loop(self, sock: zmq.Socket, stop: StopFlag) -> None:
        assert self._writer is not None
        next_flush = time.monotonic() + self.flush_interval
        while not stop.is_set():
            wait = min(POLL_INTERVAL, max(0.0, next_flush - time.monotonic()))
            if sock.poll(int(wait * 1000)):
                self._drain(sock)
            if time.monotonic() >= next_flush:
                self._writer.flush()
                for sink in self.sinks:
                    self._to_sink(sink, "flush")
                self.counters.flushes += 1
                next_flush = time.monotonic() + self.flush_interval

    def _drain(self, sock: zmq.Socket) -> None:
        """Handle the batches waiting now (at most ``DRAIN_LIMIT``)."""
        for _ in range(DRAIN_LIMIT):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            why = None if self._gate is None else self._gate.refusal(frames[-1])
            if why is None:
                self.handle(frames)
                continue
            self.counters.refused += 1  # a sender whose key was revoked after its handshake
            if self.counters.refused <= _LOG_FIRST or self.counters.refused % _LOG_EVERY == 0:
                log.warning("refused a metrics batch: %s", why)

    def handle(self, frames: list[Any]) -> bool:
        """Check one batch and write its metrics; False when it was dropped. Never raises."""
        self.counters.received += 1
        try:
            batch = decode_batch(frames, self.limits, self.max_message_bytes)
        except BatchError as exc:
            self._malformed(exc)
            return False
        try:
            self._record(batch)
        except Exception:
            self.counters.errors += 1
            log.exception("cannot record a metrics batch from %s", batch.header.source)
            return False
        self.counters.recorded += 1
        return True

    def _malformed(self, exc: BatchError) -> None:
        count = self.counters.count_malformed(exc.reason)
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            log.warning("dropped a malformed metrics batch (%d so far): %s", count, exc)

    def _record(self, batch: Batch) -> None:
        assert self._writer is not None
        header = batch.header
        kind = header.kind
        prefix = f"{kind}/" if self.tag_prefix else ""
        events: dict[int, list[Any]] = {}
        rows: dict[int, dict[str, float]] = {}  # the scalars by step, for the sinks
        scalars: dict[str, float] = {}
        histograms: dict[str, np.ndarray] = {}
        for name, value in batch.scalars.items():
            if self.filter.allows(name, kind):
                tag = prefix + name
                step = self._step(header.step, tag)
                events.setdefault(step, []).append(scalar_value(tag, value))
                rows.setdefault(step, {})[tag] = value
                scalars[name] = value
            else:
                self.counters.filtered += 1
        for name, values in batch.histograms.items():
            if not self.filter.allows(name, kind):
                self.counters.filtered += 1
                continue
            tag = prefix + name
            value = histogram_value(tag, values, self.histogram_bins)
            if value is None:
                self.counters.empty_histograms += 1
                continue
            events.setdefault(self._step(header.step, tag), []).append(value)
            histograms[name] = values
        for step, values in events.items():
            self._writer.write(step, header.time, values)
        for sink in self.sinks:
            for step, row in rows.items():
                self._to_sink(sink, "write", step, header.time, row)
        self.counters.scalars += len(scalars)
        self.counters.histograms += len(histograms)
        if self.console is not None and (scalars or histograms):
            self._print(batch, scalars, histograms)

    def _to_sink(self, sink: ScalarSink, method: str, *args: Any) -> None:
        """Call ``sink.<method>(*args)``; a failure is logged and counted, never raised."""
        try:
            getattr(sink, method)(*args)
        except Exception:
            self.counters.sink_errors += 1
            count = self.counters.sink_errors
            if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
                log.exception(
                    "the %s tracker failed to %s (%d failures so far)", sink.name, method, count
                )

    def _step(self, step: int | None, tag: str) -> int:
        """The batch's step, or the next arrival number of ``tag`` when the batch has none."""
        if step is not None:
            return step
        auto = self._auto_steps.get(tag, 0)
        self._auto_steps[tag] = auto + 1
        return auto

    def _print(
        self, batch: Batch, scalars: dict[str, float], histograms: dict[str, np.ndarray]
    ) -> None:
        assert self.console is not None
        step = "-" if batch.header.step is None else batch.header.step
        parts = [f"{name}={value:.6g}" for name, value in scalars.items()]
        for name, values in histograms.items():
            finite = values[np.isfinite(values)]
            parts.append(
                f"{name}=[n={finite.size} min={finite.min():.4g} "
                f"mean={finite.mean():.4g} max={finite.max():.4g}]"
            )
        try:
            self.console.write(f"metrics {batch.header.source} step {step}: {' '.join(parts)}\n")
            self.console.flush()
        except OSError as exc:  # stdout closed: keep collecting, stop printing
            log.warning("console logging off: %s", exc)
            self.console = None
