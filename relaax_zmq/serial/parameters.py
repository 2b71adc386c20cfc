"""``SerialParameters``: the parameter link in this process, on the shards' own core.

It holds one ``ShardCore`` per configured shard (the same slice updater, optimizer,
Cython kernels, statistics and version rules as the daemons) and hands each its slice
of every pushed gradient as a decoded message, at once and without sockets: weights are
always consistent, a sync round closes with this one worker, and what one process does
is deterministic. Like ``ParameterClient.push``, ``push`` does not copy the gradient: the
caller must not write into it afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from relaax_zmq.config import AppConfig
from relaax_zmq.core import ParameterServerSpec
from relaax_zmq.ps import wire
from relaax_zmq.ps.shard_core import ShardCore
from relaax_zmq.ps.views import checked_delta, checked_gradient


class SerialParameters:
    """A ``relaax_zmq.core.ParameterLink`` over in-process shard cores (module docstring)."""

    def __init__(
        self, config: AppConfig, spec: ParameterServerSpec, worker_name: str = "serial"
    ) -> None:
        shards = config.parameter_servers.shards
        self.cores = [ShardCore(config, i, spec) for i in range(shards)]
        self.param_count = spec.param_count
        self.sync = config.parameter_servers.update == "sync"
        self.worker_name = worker_name
        self.global_step = 0
        self.episodes = 0
        self._vector = np.zeros(spec.param_count, np.float32)
        self._versions = np.full(shards, -1, np.int64)
        self._totals: tuple[int, np.ndarray | None] = (0, None)
        self.poll()

    @property
    def ready(self) -> bool:
        return True

    @property
    def stopping(self) -> bool:
        return self.cores[0].stopping

    def poll(self) -> bool:
        """Copy the slices that changed into the vector; True when any did."""
        changed = False
        for i, core in enumerate(self.cores):
            if core.updater.version != self._versions[i]:
                self._vector[core.slice.offset : core.slice.stop] = core.updater.params
                self._versions[i] = core.updater.version
                changed = True
        self.global_step, self.episodes = self.cores[0].global_step, self.cores[0].episodes
        return changed

    def weights(self) -> tuple[np.ndarray, np.ndarray, bool]:
        view = self._vector.view()
        view.flags.writeable = False
        return view, self._versions.copy(), True

    def wait_consistent(self, timeout: float, *, newer_than: int | None = None) -> bool:
        """Nothing to wait for in one process: whether the version is above ``newer_than``."""
        self.poll()
        return newer_than is None or int(self._versions[0]) > newer_than

    def push(
        self, gradient: np.ndarray, base_versions: Sequence[int], steps: int, episodes: int
    ) -> int:
        """Each core takes its slice as the daemons' gradient message; the slices taken."""
        if self.stopping:
            return 0
        grad = checked_gradient(gradient, self.param_count, base_versions, len(self.cores))
        now = time.monotonic()
        for i, core in enumerate(self.cores):  # slices as views: the caller leaves them be
            values = grad[core.slice.offset : core.slice.stop]
            base = int(base_versions[i])
            message = wire.Gradient(
                i, self.worker_name, base, steps, episodes, core.slice.offset, values
            )
            core.handle(message, now)
            core.check_stop(now)
        shard0 = self.cores[0]
        if shard0.stopping:  # the worker's heartbeats carry shard 0's stop to the others
            for i, core in enumerate(self.cores[1:], 1):
                beat = wire.WorkerHeartbeat(i, self.worker_name, shard0.global_step, True, math.nan)
                core.handle(beat, now)
        self.poll()
        return len(self.cores)

    def add_statistics(self, delta: np.ndarray) -> None:
        """Add to shard 0's statistics at once."""
        self.cores[0].add_statistics(checked_delta(delta, self.cores[0].statistics.size))

    def statistics(self) -> np.ndarray | None:
        """Shard 0's totals (read-only); None before the first delta."""
        core = self.cores[0]
        if not core.statistics_updates:
            return None
        if self._totals[0] != core.statistics_updates:  # a copy per change, as the client's
            totals = core.statistics.copy()
            totals.flags.writeable = False
            self._totals = (core.statistics_updates, totals)
        return self._totals[1]

    def stats(self) -> dict[str, object]:
        """Every core's figures, as a shard's ``stats`` shows them."""
        now = time.monotonic()
        return {"global_step": self.global_step, "shards": [c.figures(now) for c in self.cores]}
