"""How a shard turns gradients into new versions of its slice, without sockets.

``SliceUpdater`` owns the slice, its optimizer and its version and applies the
configured rule (docs/parameter_servers.md, "Update modes"):

- ``async`` + ``fifo``: every accepted gradient is one optimizer step (version + 1);
- ``async`` + ``average``: the mean of each ``average_window`` accepted gradients is one step;
- ``async`` + ``delay_compensation`` (DC-ASGD): each gradient is corrected to
  ``g + lambda * g * g * (w_now - w_base)`` with the weights of its base version (kept
  for the last ``max_staleness + 1`` versions, or ``DC_HISTORY``), then one step;
- ``sync``: a round collects one gradient per worker on the current version; when it
  holds ``sync_workers`` of them (default ``workers.count``; or one from every live
  worker, when fewer are alive) their mean is one step. Gradients on another version are dropped.

Staleness is ``version - base_version`` at arrival; with ``max_staleness`` older
gradients are dropped. ``offer`` says what became of a gradient.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from relaax_zmq import kernels
from relaax_zmq.config.parameter_servers import ParameterServersConfig
from relaax_zmq.ps.optimizer import Optimizer
from relaax_zmq.ps.wire import Payload

#: Versions of weights DC-ASGD keeps when ``max_staleness`` is null.
DC_HISTORY = 16

#: What ``offer`` returns besides a drop reason.
APPLIED = "applied"  # the gradient made a new version (alone or closing a window/round)
QUEUED = "queued"  # kept for a window or round that is not complete yet
#: Drop reasons (each is a counter of the shard).
STALE = "dropped_stale"  # older than max_staleness, an old round, or base weights not kept
FUTURE = "dropped_future"  # base version newer than this shard's (a shard restarted)
DUPLICATE = "dropped_duplicate"  # a second gradient of one worker in one sync round
NONFINITE = "dropped_nonfinite"  # NaN, inf or values too large to square in float32
DROP_REASONS = (STALE, FUTURE, DUPLICATE, NONFINITE)


@dataclass
class Staleness:
    """Staleness of accepted gradients: totals since start and since the last ``take``."""

    count: int = 0
    total: int = 0
    max: int = 0
    recent_count: int = 0
    recent_total: int = 0
    recent_max: int = 0

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.max = max(self.max, value)
        self.recent_count += 1
        self.recent_total += value
        self.recent_max = max(self.recent_max, value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def take_recent(self) -> tuple[float, int]:
        """(mean, max) since the last call, then start counting again."""
        mean = self.recent_total / self.recent_count if self.recent_count else 0.0
        found = (mean, self.recent_max)
        self.recent_count = self.recent_total = self.recent_max = 0
        return found


class SliceUpdater:
    """One shard's slice, optimizer, version and update rule (see the module docstring)."""

    def __init__(
        self,
        config: ParameterServersConfig,
        params: np.ndarray,
        optimizer: Optimizer,
        *,
        sync_workers: int = 1,
    ) -> None:
        self.params = np.require(params, np.float32, ["C", "A", "W", "O"]).copy()
        self.optimizer = optimizer
        self.version = 0
        self.sync = config.update == "sync"
        self.combine = config.effective_combine
        self.window_size = config.average_window
        self.lam = config.delay_compensation_lambda
        self.max_staleness = config.max_staleness
        self.sync_workers = config.sync_workers or sync_workers
        self.staleness = Staleness()
        self.updates = 0  # versions made since start (or restore)
        self._window: list[np.ndarray] = []
        self._round: dict[str, np.ndarray] = {}
        self._scratch = np.empty_like(self.params)
        self._spares: list[np.ndarray] = []  # buffers from ``spare`` the updater holds no more
        self._lent: set[int] = set()  # ids of the buffers ``spare`` gave out
        keep = DC_HISTORY if self.max_staleness is None else self.max_staleness + 1
        self._history_size = max(1, keep)
        self._history: OrderedDict[int, np.ndarray] = OrderedDict()
        self._remember()

    # -- gradients ------------------------------------------------------------------------------

    def spare(self) -> np.ndarray:
        """A slice-sized float32 buffer to assemble a gradient in; ``offer`` takes it back.

        Buffers are reused once the updater holds them no more (a fresh one of tens of
        megabytes costs page faults on every gradient).
        """
        if self._spares:
            buffer = self._spares.pop()
        else:
            buffer = np.empty_like(self.params)
        self._lent.add(id(buffer))
        return buffer

    def _release(self, *buffers: np.ndarray) -> None:
        """Return the ``spare`` buffers among ``buffers`` to the pool."""
        for buffer in buffers:
            if id(buffer) in self._lent:
                self._lent.discard(id(buffer))
                self._spares.append(buffer)

    def offer(
        self,
        worker: str,
        base_version: int,
        grad: np.ndarray | Payload,
        live_workers: int = 1,
    ) -> str:
        """Take a gradient of the slice computed on ``base_version``; APPLIED, QUEUED or a drop.

        ``grad`` must be a float32 vector of the slice's length, or the ``Payload`` it
        arrived as (fifo applies its frames where they lie; the other rules assemble
        it in a pooled buffer). ``live_workers`` is how many workers the shard heard
        from lately (sync rounds). A buffer from ``spare`` goes back to the pool once
        the updater is done with it.
        """
        if isinstance(grad, Payload):
            if grad.size != self.params.size:
                raise ValueError(f"gradient: expected {self.params.size} values, got {grad.size}")
            if len(grad.chunks) == 1:
                grad = grad.chunks[0]
            elif not self.sync and self.combine == "fifo":
                return self._offer_pieces(base_version, grad.chunks)
            else:
                buffer = self.spare()
                grad.copy_into(buffer)
                grad = buffer
        outcome = self._offer(worker, base_version, grad, live_workers)
        if outcome != QUEUED:
            self._release(grad)
        return outcome

    def _offer(self, worker: str, base_version: int, grad: np.ndarray, live_workers: int) -> str:
        grad = _aligned(grad)
        if grad.shape != self.params.shape:
            raise ValueError(f"gradient: expected {self.params.shape}, got {grad.shape}")
        if not _finite(grad):
            return NONFINITE
        staleness = self.version - base_version
        if staleness < 0:
            return FUTURE
        if self.sync:
            return self._offer_sync(worker, staleness, grad, live_workers)
        if self.max_staleness is not None and staleness > self.max_staleness:
            return STALE
        if self.combine == "delay_compensation":
            base = self._history.get(base_version)
            if base is None:
                return STALE
            corrected = self._compensated(grad, base)
            if corrected is not grad and not _finite(corrected):  # lambda 0: checked
                return NONFINITE
            self.staleness.add(staleness)
            self._apply(corrected)
            return APPLIED
        self.staleness.add(staleness)
        if self.combine == "average":
            self._window.append(grad)
            if len(self._window) < self.window_size:
                return QUEUED
            kernels.mean_into(self._scratch, self._window)
            self._release(*self._window[:-1])  # the last is the one being offered
            self._window = []
            self._apply(self._scratch)
            return APPLIED
        self._apply(grad)
        return APPLIED

    def _offer_pieces(self, base_version: int, pieces: tuple[np.ndarray, ...]) -> str:
        """fifo on a gradient in pieces: checked whole, then applied piece by piece."""
        if not all(_finite(piece) for piece in pieces):
            return NONFINITE
        staleness = self.version - base_version
        if staleness < 0:
            return FUTURE
        if self.max_staleness is not None and staleness > self.max_staleness:
            return STALE
        self.staleness.add(staleness)
        self._apply(pieces)
        return APPLIED

    def close_round(self, live_workers: int) -> bool:
        """Sync: apply the round when it is complete for ``live_workers``; True when it was."""
        if not self.sync or not self._round:
            return False
        needed = min(max(1, live_workers), self.sync_workers)
        if len(self._round) < needed:
            return False
        kernels.mean_into(self._scratch, list(self._round.values()))
        self._release(*self._round.values())
        self._round = {}
        self._apply(self._scratch)
        return True

    def _offer_sync(self, worker: str, staleness: int, grad: np.ndarray, live: int) -> str:
        if staleness > 0:
            return STALE
        if worker in self._round:
            return DUPLICATE
        self._round[worker] = grad
        self.staleness.add(0)
        return APPLIED if self.close_round(live) else QUEUED

    def _compensated(self, grad: np.ndarray, base: np.ndarray) -> np.ndarray:
        """DC-ASGD: ``g + lambda * g * g * (w_now - w_base)`` in float32."""
        if not self.lam:
            return grad
        out = self.params - base
        out *= grad
        out *= grad
        out *= np.float32(self.lam)
        out += grad
        return out

    def _apply(self, grad: np.ndarray | tuple[np.ndarray, ...]) -> None:
        self.optimizer.apply(self.params, grad)
        self.version += 1
        self.updates += 1
        self._remember()

    def _remember(self) -> None:
        if self.combine != "delay_compensation" or self.sync:
            return
        self._history[self.version] = self.params.copy()
        while len(self._history) > self._history_size:
            self._history.popitem(last=False)

    # -- versions -------------------------------------------------------------------------------

    def adopt_version(self, version: int) -> bool:
        """Number this slice ``version`` when it has made no version since it started.

        A restarted shard learns from its workers' HELLOs how far the others got, so
        that sync rounds line up again; its weights are the ones it started with.
        """
        if self.updates or version <= self.version:
            return False
        self.version = version
        self._release(*self._round.values())
        self._round = {}
        self._history.clear()
        self._remember()
        return True

    def pending(self) -> int:
        """Gradients held in an incomplete window or round."""
        return len(self._window) + len(self._round)

    def load(self, params: np.ndarray, version: int) -> None:
        """Replace the slice and its version (restore); forgets windows, rounds and history."""
        if params.shape != self.params.shape:
            raise ValueError(f"params: expected {self.params.shape}, got {params.shape}")
        self.params[...] = params
        self.version = int(version)
        self.updates = 0
        self._release(*self._window, *self._round.values())
        self._window, self._round = [], {}
        self._history.clear()
        self._remember()


def _finite(grad: np.ndarray) -> bool:
    """No NaN or inf, nor a squared norm that overflows float32 (any value above about 1.8e19):
    garbage, that would make the optimizers' squares and momenta, then the weights, infinite.
    One fast pass (a dot product; a sum would let huge values of opposite signs through)."""
    return bool(np.isfinite(np.dot(grad, grad)))


def _aligned(grad: np.ndarray) -> np.ndarray:
    """``grad`` itself when the kernels take it as is, else an aligned copy."""
    if grad.dtype == np.float32 and grad.flags.c_contiguous and grad.flags.aligned:
        return grad
    return np.require(grad, np.float32, ["C", "A"])
