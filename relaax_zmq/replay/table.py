"""The replay server's storage: a bounded, prioritized table of items with fixed fields.

An item is a set of named numpy arrays (``obs``, ``action``, ``reward``, ...) whose per-item
shapes and dtypes the table's *schema* fixes; the server takes its schema from the first
batch inserted (``schema_from``). Storage is one preallocated array per field, ``capacity``
items long, so memory is bounded by ``nbytes`` from construction on: inserting never
allocates table memory, it copies into a ring, overwriting the oldest items when full.

Every item gets a 64-bit *key*, its insertion number (0, 1, 2, ...); it lives in slot
``key % capacity`` until overwritten. Keys let a learner's late priority updates be matched
safely: an update whose key's slot now holds a newer item is skipped (Reverb's semantics).

Sampling is proportional prioritized replay (Schaul et al. 2016): item ``i`` is drawn with
probability ``P(i) = q_i / sum_k q_k`` where ``q_i = (p_i + eps) ^ alpha`` for its priority
``p_i`` (alpha 0: uniform), one draw per equal slice of the total mass (stratified), and
weighted by ``w_i = (N P(i))^-beta / max_k w_k`` (``N`` the items held, the maximum over the
whole table). ``q`` lives in the segment trees of ``algorithms.common.replay``, so inserts,
updates and draws cost O(log capacity) per item, vectorised over a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from relaax_zmq.algorithms.common.replay import MinTree, SumTree

#: Per field: (shape of one item, dtype).
Schema = Mapping[str, tuple[tuple[int, ...], np.dtype]]


@dataclass(frozen=True)
class SampledItems:
    """A sampled batch of ``B`` items (drawn with replacement).

    ``keys``: (B,) int64, for ``update_priorities``; ``fields``: each (B, *shape) in the
    schema's dtype; ``probabilities``: (B,) float64 ``P(i)``; ``weights``: (B,) float32
    importance weights, at most 1.
    """

    keys: np.ndarray
    fields: dict[str, np.ndarray]
    probabilities: np.ndarray
    weights: np.ndarray


def schema_from(fields: Mapping[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The schema of a batch: each field's per-item shape (its shape less the batch axis) and dtype."""
    schema = {}
    for name, array in fields.items():
        array = np.asarray(array)
        if array.ndim < 1:
            raise ValueError(f"field {name!r}: expected a batch (N, ...), got a 0-d array")
        schema[name] = (array.shape[1:], array.dtype)
    return _checked_schema(schema)


def _checked_schema(schema: Schema) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if not schema:
        raise ValueError("replay schema: expected at least one field, got none")
    checked = {}
    for name, (shape, dtype) in schema.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"replay schema: expected non-empty field names, got {name!r}")
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype)
        if any(d < 0 for d in shape) or dtype.hasobject:
            raise ValueError(
                f"field {name!r}: expected a shape of sizes >= 0 and a fixed-size dtype, "
                f"got shape {shape} and dtype {dtype}"
            )
        checked[name] = (shape, dtype)
    return checked


class PrioritizedTable:
    """A ring of ``capacity`` items of fixed fields, sampled by priority (see the module docstring).

    Args:
        capacity: items kept; the oldest is overwritten beyond.
        schema: per field, one item's shape and dtype.
        alpha: how much the priorities count (0: uniform).
        eps: added to every priority so that none has probability 0.
    """

    def __init__(self, capacity: int, schema: Schema, *, alpha: float = 0.6, eps: float = 1e-6):
        if capacity < 1:
            raise ValueError(f"replay capacity: expected >= 1, got {capacity}")
        if not (math.isfinite(alpha) and alpha >= 0 and math.isfinite(eps) and eps > 0):
            raise ValueError(f"alpha, eps: expected alpha >= 0 and eps > 0, got {alpha}, {eps}")
        self._schema = MappingProxyType(_checked_schema(schema))
        self._capacity = int(capacity)
        self._alpha = float(alpha)
        self._eps = float(eps)
        self._storage = {
            name: np.zeros((capacity, *shape), dtype)
            for name, (shape, dtype) in self._schema.items()
        }
        self._keys = np.full(capacity, -1, np.int64)  # the key held by each slot (-1: empty)
        self._sums = SumTree(capacity)
        self._minima = MinTree(capacity)
        self._inserted = 0
        self._sampled = 0
        self._max_priority = 1.0

    @property
    def schema(self) -> Mapping[str, tuple[tuple[int, ...], np.dtype]]:
        """Per field: one item's shape and dtype (read-only)."""
        return self._schema

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def eps(self) -> float:
        return self._eps

    @property
    def inserted(self) -> int:
        """Items inserted since construction (the next key)."""
        return self._inserted

    @property
    def sampled(self) -> int:
        """Items sampled since construction (a batch of B counts B)."""
        return self._sampled

    @property
    def max_priority(self) -> float:
        """The largest priority inserted or set so far (1.0 before any, as in
        ``algorithms.common.replay``): what to give an item that comes without one."""
        return self._max_priority

    @property
    def nbytes(self) -> int:
        """Bytes of every array the table holds (fields, keys, trees), fixed at construction."""
        arrays = [*self._storage.values(), self._keys, self._sums.tree, self._minima.tree]
        return sum(a.nbytes for a in arrays)

    def __len__(self) -> int:
        return min(self._inserted, self._capacity)

    def insert(self, fields: Mapping[str, np.ndarray], priorities: np.ndarray) -> np.ndarray:
        """Store ``N`` items (each field (N, *shape), exactly the schema's dtype) with
        priorities (N,) finite and >= 0; returns their keys (N,) int64.

        Nothing is stored when any argument is wrong. Beyond ``capacity`` items the oldest
        are overwritten (within a batch too: of N > capacity only the last capacity stay).
        """
        priorities = np.asarray(priorities, np.float64)
        if priorities.ndim != 1:
            raise ValueError(f"priorities: expected shape (N,), got {priorities.shape}")
        _check_priorities(priorities)
        n = priorities.shape[0]
        if set(fields) != set(self._schema):
            missing = sorted(set(self._schema) - set(fields))
            extra = sorted(set(fields) - set(self._schema))
            raise ValueError(
                f"insert fields: expected {sorted(self._schema)}, got {sorted(fields)} "
                f"(missing {missing}, extra {extra})"
            )
        arrays = {}
        for name, (shape, dtype) in self._schema.items():
            array = np.asarray(fields[name])
            if array.dtype != dtype:
                raise ValueError(f"field {name!r}: expected dtype {dtype}, got {array.dtype}")
            if array.shape != (n, *shape):
                raise ValueError(
                    f"field {name!r}: expected shape {(n, *shape)} (N = {n} priorities), "
                    f"got {array.shape}"
                )
            arrays[name] = array
        keys = np.arange(self._inserted, self._inserted + n, dtype=np.int64)
        kept = slice(max(0, n - self._capacity), n)  # the items this batch does not overwrite
        slots = keys[kept] % self._capacity
        for name, array in arrays.items():
            self._storage[name][slots] = array[kept]
        self._keys[slots] = keys[kept]
        self._set(slots, priorities[kept])
        self._inserted += n
        return keys

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float) -> SampledItems:
        """``batch_size`` items, one from each of ``batch_size`` equal slices of the priority
        mass (stratified), with importance weights for exponent ``beta`` in [0, 1]."""
        count = len(self)
        if count == 0 or batch_size < 1:
            raise ValueError(
                f"replay sample: expected a non-empty table and batch_size >= 1, "
                f"got {count} items and batch_size {batch_size}"
            )
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected a value in [0, 1], got {beta}")
        total = self._sums.root
        points = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        # filled slots are 0..count-1 (keys start at 0); the clamp absorbs rounding at the top
        slots = np.minimum(self._sums.find(points), count - 1)
        probabilities = self._sums[slots] / total
        weights = (count * probabilities) ** -beta
        max_weight = (count * self._minima.root / total) ** -beta
        self._sampled += batch_size
        return SampledItems(
            keys=self._keys[slots],
            fields={name: array[slots] for name, array in self._storage.items()},
            probabilities=probabilities,
            weights=(weights / max_weight).astype(np.float32),
        )

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """Set the priorities of the ``keys`` still held; returns how many were applied.

        A key whose slot has been overwritten since (or that was never given) is skipped;
        of a key repeated, the last priority counts.
        """
        keys = np.asarray(keys)
        priorities = np.asarray(priorities, np.float64)
        if keys.dtype.kind not in "iu" or keys.ndim != 1 or priorities.shape != keys.shape:
            raise ValueError(
                f"keys, priorities: expected integer keys (N,) and priorities (N,), "
                f"got {keys.dtype} {keys.shape} and {priorities.shape}"
            )
        _check_priorities(priorities)
        keys = keys.astype(np.int64)
        slots = keys % self._capacity
        live = (keys >= 0) & (self._keys[slots] == keys)
        self._set(slots[live], priorities[live])
        return int(live.sum())

    def _set(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        if slots.size == 0:
            return
        scaled = (priorities + self._eps) ** self._alpha
        self._sums.update(slots, scaled)
        self._minima.update(slots, scaled)
        self._max_priority = max(self._max_priority, float(priorities.max()))


def _check_priorities(priorities: np.ndarray) -> None:
    bad = ~np.isfinite(priorities) | (priorities < 0)
    if bad.any():
        raise ValueError(
            f"priorities: expected finite values >= 0, got {priorities[bad][:5].tolist()}"
        )
