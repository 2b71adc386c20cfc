"""``UnrollReplay``: the learner's ring of whole unrolls (IMPALA's experience replay)."""

from __future__ import annotations

import pytest
import torch

from relaax_zmq.algorithms.common.unroll_replay import UnrollReplay

TIME_MAJOR = frozenset({"obs", "reward"})
T = 3


def batch(first: int, count: int) -> dict[str, torch.Tensor]:
    """``count`` unrolls numbered from ``first``: every value of unroll i is i."""
    ids = torch.arange(first, first + count, dtype=torch.float32)
    return {
        "obs": ids.view(1, count, 1).expand(T + 1, count, 2).clone(),  # (T+1, N, 2)
        "reward": ids.view(1, count).expand(T, count).clone(),  # (T, N)
        "h": ids.view(count, 1).expand(count, 5).clone(),  # (N, 5): no time axis
    }


def ids_of(sample: dict[str, torch.Tensor]) -> list[int]:
    """The unroll numbers in a sample, after checking every field agrees on each."""
    ids = sample["h"][:, 0]
    assert torch.equal(sample["obs"], ids.view(1, -1, 1).expand_as(sample["obs"]))
    assert torch.equal(sample["reward"], ids.view(1, -1).expand_as(sample["reward"]))
    return sorted(int(i) for i in ids)


def replay(capacity: int, seed: int = 0) -> UnrollReplay:
    return UnrollReplay(capacity, TIME_MAJOR, torch.Generator().manual_seed(seed))


def test_the_ring_keeps_the_newest_capacity_unrolls_whole() -> None:
    memory = replay(5)
    memory.add(batch(0, 3))
    assert len(memory) == 3 and ids_of(memory.sample(10)) == [0, 1, 2]
    memory.add(batch(3, 4))  # 7 unrolls through 5 slots: 0 and 1 overwritten
    assert len(memory) == 5 and ids_of(memory.sample(10)) == [2, 3, 4, 5, 6]
    memory.add(batch(7, 12))  # more than the capacity at once: its newest 5
    assert ids_of(memory.sample(10)) == [14, 15, 16, 17, 18]
    assert memory.nbytes == 5 * ((T + 1) * 2 + T + 5) * 4


def test_a_sample_holds_distinct_unrolls_and_covers_the_memory_uniformly() -> None:
    memory = replay(8)
    memory.add(batch(0, 8))
    counts = torch.zeros(8)
    for _ in range(400):
        ids = ids_of(memory.sample(3))
        assert len(set(ids)) == 3
        counts[ids] += 1
    assert counts.sum() == 1200 and counts.min() > 100  # each ~150 of 1200


def test_bad_batches_are_refused_naming_the_field_and_nothing_is_written() -> None:
    memory = replay(4)
    memory.add(batch(0, 2))
    wrong_length = {**batch(2, 1), "reward": torch.zeros(T + 2, 1)}
    with pytest.raises(ValueError, match=r"reward of shape \(3,\) torch.float32 .* got \(5,\)"):
        memory.add(wrong_length)
    wrong_dtype = {**batch(2, 1), "h": torch.zeros(1, 5, dtype=torch.float64)}
    with pytest.raises(ValueError, match="h of shape .* got .*float64"):
        memory.add(wrong_dtype)
    with pytest.raises(ValueError, match=r"expected the fields \['h', 'obs', 'reward'\]"):
        memory.add({k: v for k, v in batch(2, 1).items() if k != "h"})
    with pytest.raises(ValueError, match="disagree on the number of unrolls"):
        memory.add({**batch(2, 1), "h": torch.zeros(2, 5)})
    assert len(memory) == 2 and ids_of(memory.sample(4)) == [0, 1]


def test_sampling_an_empty_memory_and_a_zero_capacity_are_refused() -> None:
    with pytest.raises(ValueError, match="nothing to sample"):
        replay(2).sample(1)
    with pytest.raises(ValueError, match="at least 1 unroll, got 0"):
        replay(0)
