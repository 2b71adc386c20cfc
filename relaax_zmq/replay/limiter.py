"""The replay server's rate limiter: Reverb's ``SampleToInsertRatio`` and ``MinSize``, pure.

It only counts and answers; the daemon asks before it acts, records what it did, and makes
a refused side wait (no clocks, locks or timeouts here).

With ``diff = inserts * samples_per_insert - samples`` (items, not calls) and, as in Reverb,
``offset = min_size_to_sample * samples_per_insert``, ``min_diff = offset - error_buffer``,
``max_diff = offset + error_buffer``:

- sampling ``n`` is allowed when at least ``min_size_to_sample`` items were inserted and
  ``diff - n >= min_diff``;
- inserting ``n`` is allowed while fewer than ``min_size_to_sample`` items were inserted,
  and then when ``diff + n * samples_per_insert <= max_diff``.

So once the table has its minimum size the observed ratio stays within ``error_buffer``
items of ``samples_per_insert``: ``|diff - offset| <= error_buffer`` (a batch inserted
before the minimum size may overshoot it; sampling then catches up). A ``samples_per_insert``
of None or 0 is Reverb's ``MinSize``: only the minimum size applies, inserts never wait.

Deadlock: both sides are refused only when ``n_sample + n_insert * samples_per_insert >
2 * error_buffer``. Reverb therefore requires ``error_buffer >= max(1, samples_per_insert)``,
which lets single-item steps always make progress; a daemon that moves batches must keep
``n_sample + n_insert * samples_per_insert <= 2 * error_buffer`` (or split its batches).

The size is taken as the items inserted: the table is a ring that never shrinks, so it holds
``min_size_to_sample`` items exactly when that many were inserted, provided its capacity is
at least ``min_size_to_sample`` (the daemon's check).
"""

from __future__ import annotations

import math
from numbers import Integral, Real


class RateLimiter:
    """Keeps samples per insert near ``samples_per_insert`` (see the module docstring).

    Args:
        samples_per_insert: the target ratio of items sampled to items inserted; None or 0:
            no ratio, only the minimum size.
        min_size_to_sample: items inserted before any sample is allowed (>= 1).
        error_buffer: how far, in items sampled, the ratio may drift either way; at least
            ``max(1, samples_per_insert)`` so that the limiter cannot deadlock.

    ``blocked_samples`` and ``blocked_inserts`` count the refusals of ``can_sample`` and
    ``can_insert``, once per call that said no (a daemon that asks again while waiting
    counts each ask).
    """

    def __init__(
        self, samples_per_insert: float | None, min_size_to_sample: int, error_buffer: float
    ) -> None:
        if samples_per_insert is not None and not (
            isinstance(samples_per_insert, Real)
            and math.isfinite(samples_per_insert)
            and samples_per_insert >= 0
        ):
            raise ValueError(
                f"samples_per_insert: expected None or a finite number >= 0, got {samples_per_insert!r}"
            )
        if (
            not isinstance(min_size_to_sample, Integral)
            or isinstance(min_size_to_sample, bool)
            or min_size_to_sample < 1
        ):
            raise ValueError(
                f"min_size_to_sample: expected an integer >= 1, got {min_size_to_sample!r}"
            )
        if not (
            isinstance(error_buffer, Real) and math.isfinite(error_buffer) and error_buffer >= 0
        ):
            raise ValueError(f"error_buffer: expected a finite number >= 0, got {error_buffer!r}")
        self._spi = float(samples_per_insert) if samples_per_insert else 0.0
        self._min_size = int(min_size_to_sample)
        self._error_buffer = float(error_buffer)
        if self._spi > 0:
            if error_buffer < max(1.0, self._spi):
                raise ValueError(
                    f"error_buffer: expected >= max(1, samples_per_insert) = "
                    f"{max(1.0, self._spi)}, got {error_buffer} (a smaller buffer can refuse "
                    f"both a single insert and a single sample: a deadlock)"
                )
            offset = self._min_size * self._spi
            self._min_diff = offset - self._error_buffer
            self._max_diff = offset + self._error_buffer
        else:
            self._min_diff, self._max_diff = -math.inf, math.inf
        self._inserts = 0
        self._samples = 0
        self.blocked_samples = 0
        self.blocked_inserts = 0

    @property
    def samples_per_insert(self) -> float | None:
        """The target ratio (None: no ratio)."""
        return self._spi or None

    @property
    def min_size_to_sample(self) -> int:
        return self._min_size

    @property
    def error_buffer(self) -> float:
        return self._error_buffer

    @property
    def min_diff(self) -> float:
        """The smallest ``diff`` a sample may leave (-inf without a ratio)."""
        return self._min_diff

    @property
    def max_diff(self) -> float:
        """The largest ``diff`` an insert may leave (inf without a ratio)."""
        return self._max_diff

    @property
    def inserts(self) -> int:
        """Items inserted (recorded by ``inserted``)."""
        return self._inserts

    @property
    def samples(self) -> int:
        """Items sampled (recorded by ``sampled``)."""
        return self._samples

    @property
    def diff(self) -> float:
        """``inserts * samples_per_insert - samples`` (``-samples`` without a ratio)."""
        return self._inserts * self._spi - self._samples

    @property
    def ratio(self) -> float:
        """The observed samples per insert (0.0 before any insert), for reports."""
        return self._samples / self._inserts if self._inserts else 0.0

    def can_sample(self, n: int = 1) -> bool:
        """Whether sampling ``n`` items now keeps the ratio (see the module docstring)."""
        _check_count(n)
        allowed = self._inserts >= self._min_size and self.diff - n >= self._min_diff
        if not allowed:
            self.blocked_samples += 1
        return allowed

    def can_insert(self, n: int = 1) -> bool:
        """Whether inserting ``n`` items now keeps the ratio (see the module docstring)."""
        _check_count(n)
        allowed = self._inserts < self._min_size or self.diff + n * self._spi <= self._max_diff
        if not allowed:
            self.blocked_inserts += 1
        return allowed

    def inserted(self, n: int = 1) -> None:
        """Record ``n`` items inserted."""
        _check_count(n)
        self._inserts += n

    def sampled(self, n: int = 1) -> None:
        """Record ``n`` items sampled."""
        _check_count(n)
        self._samples += n


def _check_count(n: int) -> None:
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"item count: expected an integer >= 0, got {n!r}")
