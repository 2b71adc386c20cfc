"""``UnrollReplay``: a learner's memory of recent whole unrolls, to learn from again.

IMPALA's experience replay (Espeholt et al. 2018, section 5.2.3; RLlib's
``replay_proportion``): besides each fresh batch, the learner takes gradient steps on
batches drawn uniformly from the last ``capacity`` unrolls it received. V-trace already
corrects for the lag between the policy that acted and the one being learned, so a
replayed unroll is one more off-policy unroll; it carries its own behaviour
log-probabilities and, with an LSTM, the state its actor started it with.

The memory is a ring of ``capacity`` unrolls per field, allocated on the learner's device
at the first ``add`` (``nbytes`` says how much): once full, the oldest unroll is
overwritten. Fields with a time axis are stored time-major ``(T, capacity, ...)`` as the
learner holds them, the others ``(capacity, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def select_unrolls(
    fields: Mapping[str, torch.Tensor], rows: torch.Tensor, time_major: frozenset[str]
) -> dict[str, torch.Tensor]:
    """The unrolls ``rows`` of a batch (axis 1 of the ``time_major`` fields, else axis 0)."""
    return {k: v[:, rows] if k in time_major else v[rows] for k, v in fields.items()}


class UnrollReplay:
    """A ring of ``capacity`` unrolls; ``time_major`` names the fields with a time axis.

    Args:
        capacity: unrolls held (at least 1).
        time_major: the fields stored time-major (axis 1 counts unrolls).
        generator: the random source of ``sample``.
    """

    def __init__(
        self, capacity: int, time_major: frozenset[str], generator: torch.Generator
    ) -> None:
        if capacity < 1:
            raise ValueError(f"expected a replay capacity of at least 1 unroll, got {capacity}")
        self.capacity = capacity
        self.time_major = time_major
        self.generator = generator
        self.fields: dict[str, torch.Tensor] = {}
        self.size = 0  # unrolls held
        self.next = 0  # the slot the next unroll goes to

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes the memory holds (0 before the first ``add``)."""
        return sum(t.numel() * t.element_size() for t in self.fields.values())

    def add(self, batch: Mapping[str, torch.Tensor]) -> None:
        """Keep the unrolls of a time-major ``batch`` (the newest ``capacity`` of them).

        ValueError when its fields, shapes or dtypes differ from the first batch's."""
        count = self._count(batch)
        if not self.fields:
            self.fields = {k: self._allocate(k, v) for k, v in batch.items()}
        elif batch.keys() != self.fields.keys():
            raise ValueError(
                f"replay: expected the fields {sorted(self.fields)}, got {sorted(batch)}"
            )
        skip = max(0, count - self.capacity)
        device = next(iter(self.fields.values())).device
        slots = (self.next + torch.arange(count - skip, device=device)) % self.capacity
        for key, value in batch.items():  # all checked before any is written
            stored = self.fields[key]
            if self._unit(key, value) != self._unit(key, stored) or value.dtype != stored.dtype:
                raise ValueError(
                    f"replay: expected {key} of shape {self._unit(key, stored)} {stored.dtype} "
                    f"per unroll, got {self._unit(key, value)} {value.dtype}"
                )
        for key, value in batch.items():
            if key in self.time_major:
                self.fields[key][:, slots] = value[:, skip:]
            else:
                self.fields[key][slots] = value[skip:]
        self.next = (self.next + count - skip) % self.capacity
        self.size = min(self.capacity, self.size + count - skip)

    def sample(self, count: int) -> dict[str, torch.Tensor]:
        """``count`` distinct unrolls drawn uniformly (all held, if fewer), time-major."""
        if self.size == 0:
            raise ValueError("replay: nothing to sample before the first add")
        rows = torch.randperm(self.size, generator=self.generator)[:count]
        rows = rows.to(next(iter(self.fields.values())).device)
        return select_unrolls(self.fields, rows, self.time_major)

    def _count(self, batch: Mapping[str, torch.Tensor]) -> int:
        counts = {int(v.shape[1] if k in self.time_major else v.shape[0]) for k, v in batch.items()}
        if len(counts) != 1:
            raise ValueError(f"replay: the fields disagree on the number of unrolls: {counts}")
        return counts.pop()

    def _allocate(self, key: str, value: torch.Tensor) -> torch.Tensor:
        if key in self.time_major:
            shape = (value.shape[0], self.capacity, *value.shape[2:])
        else:
            shape = (self.capacity, *value.shape[1:])
        return torch.zeros(shape, dtype=value.dtype, device=value.device)

    def _unit(self, key: str, value: torch.Tensor) -> tuple[int, ...]:
        """The shape of one unroll of field ``key``."""
        if key in self.time_major:
            return (value.shape[0], *value.shape[2:])
        return tuple(value.shape[1:])
