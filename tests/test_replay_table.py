"""replay/table.py: schema checks, the ring and its keys, stale priority updates, sampling
frequencies and importance weights against direct numpy formulas, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from relaax_zmq.replay import PrioritizedTable, SampledItems, schema_from

SCHEMA = {
    "obs": ((4,), np.dtype(np.float32)),
    "action": ((), np.dtype(np.int64)),
    "reward": ((), np.dtype(np.float32)),
    "next_obs": ((4,), np.dtype(np.float32)),
    "discount": ((), np.dtype(np.float32)),
}
ITEM_BYTES = 16 + 8 + 4 + 16 + 4


def batch(start: int, n: int) -> dict[str, np.ndarray]:
    """Items ``start .. start+n-1``, every field derived from the item's number."""
    ids = np.arange(start, start + n)
    return {
        "obs": np.repeat(ids[:, None], 4, axis=1).astype(np.float32),
        "action": ids.astype(np.int64),
        "reward": (ids * 0.5).astype(np.float32),
        "next_obs": np.repeat(ids[:, None] + 1, 4, axis=1).astype(np.float32),
        "discount": np.full(n, 0.99, np.float32),
    }


def test_insert_returns_keys_and_counts():
    table = PrioritizedTable(10, SCHEMA)
    assert len(table) == 0 and table.inserted == 0
    np.testing.assert_array_equal(table.insert(batch(0, 3), np.ones(3)), [0, 1, 2])
    keys = table.insert(batch(3, 4), np.ones(4))
    assert keys.dtype == np.int64
    np.testing.assert_array_equal(keys, [3, 4, 5, 6])
    assert len(table) == 7 and table.inserted == 7 and table.capacity == 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.update(obs=f["obs"].astype(np.float64)),
            "'obs': expected dtype float32, got float64",
        ),
        (
            lambda f: f.update(action=f["action"].astype(np.int32)),
            "'action': expected dtype int64, got int32",
        ),
        (
            lambda f: f.update(obs=np.zeros((3, 5), np.float32)),
            r"'obs': expected shape \(3, 4\).*got \(3, 5\)",
        ),
        (
            lambda f: f.update(reward=np.zeros(2, np.float32)),
            r"'reward': expected shape \(3,\).*got \(2,\)",
        ),
        (lambda f: f.pop("discount"), r"missing \['discount'\], extra \[\]"),
        (lambda f: f.update(done=np.zeros(3, np.float32)), r"missing \[\], extra \['done'\]"),
    ],
)
def test_insert_schema_errors_name_field_expected_and_got(change, message):
    table = PrioritizedTable(8, SCHEMA)
    fields = batch(0, 3)
    change(fields)
    with pytest.raises(ValueError, match=message):
        table.insert(fields, np.ones(3))
    assert table.inserted == 0 and len(table) == 0  # nothing stored


@pytest.mark.parametrize(
    ("priorities", "message"),
    [
        (np.array([1.0, -0.5, 1.0]), r"finite values >= 0, got \[-0.5\]"),
        (np.array([1.0, np.nan, np.inf]), r"finite values >= 0, got \[nan, inf\]"),
        (np.ones((3, 1)), r"expected shape \(N,\), got \(3, 1\)"),
        (np.ones(4), r"'\w+': expected shape \(4, "),
    ],
)
def test_insert_priority_errors(priorities, message):
    table = PrioritizedTable(8, SCHEMA)
    with pytest.raises(ValueError, match=message):
        table.insert(batch(0, 3), priorities)
    assert table.inserted == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0}, "capacity: expected >= 1, got 0"),
        ({"schema": {}}, "at least one field"),
        ({"schema": {"x": ((2,), object)}}, "fixed-size dtype"),
        ({"schema": {"x": ((-1,), np.float32)}}, "sizes >= 0"),
        ({"alpha": -0.1}, "alpha >= 0"),
        ({"eps": 0.0}, "eps > 0"),
    ],
)
def test_constructor_errors(kwargs, message):
    args = {"capacity": 4, "schema": SCHEMA, **kwargs}
    capacity, schema = args.pop("capacity"), args.pop("schema")
    with pytest.raises(ValueError, match=message):
        PrioritizedTable(capacity, schema, **args)


def test_schema_from_a_first_batch():
    schema = schema_from(batch(0, 5))
    assert schema == SCHEMA
    table = PrioritizedTable(4, schema)
    table.insert(batch(0, 2), np.ones(2))
    assert dict(table.schema) == SCHEMA
    with pytest.raises(ValueError, match="'x': expected a batch"):
        schema_from({"x": np.float32(1.0)})
    with pytest.raises(ValueError, match="at least one field"):
        schema_from({})


def held_ids(table: PrioritizedTable, rng: np.random.Generator) -> dict[int, int]:
    """key -> item number of every item a large uniform sample reaches."""
    sample = table.sample(50 * table.capacity, rng, beta=0.0)
    ids = sample.fields["action"]
    np.testing.assert_array_equal(sample.fields["obs"], np.repeat(ids[:, None], 4, axis=1))
    np.testing.assert_array_equal(sample.fields["next_obs"], sample.fields["obs"] + 1)
    np.testing.assert_array_equal(sample.fields["reward"], (ids * 0.5).astype(np.float32))
    return dict(zip(sample.keys.tolist(), ids.tolist(), strict=True))


def test_ring_overwrites_the_oldest():
    rng = np.random.default_rng(0)
    table = PrioritizedTable(5, SCHEMA, alpha=0.0)
    table.insert(batch(0, 3), np.ones(3))
    assert held_ids(table, rng) == {0: 0, 1: 1, 2: 2}
    table.insert(batch(3, 4), np.ones(4))
    assert len(table) == 5 and table.inserted == 7
    assert held_ids(table, rng) == {k: k for k in range(2, 7)}


def test_a_batch_larger_than_the_ring_keeps_its_last_items():
    rng = np.random.default_rng(1)
    table = PrioritizedTable(5, SCHEMA, alpha=0.0)
    table.insert(batch(0, 2), np.ones(2))
    keys = table.insert(batch(2, 12), np.ones(12))
    np.testing.assert_array_equal(keys, np.arange(2, 14))
    assert len(table) == 5 and table.inserted == 14
    assert held_ids(table, rng) == {k: k for k in range(9, 14)}


def probabilities_by_key(table: PrioritizedTable, rng: np.random.Generator) -> dict[int, float]:
    sample = table.sample(200, rng, beta=1.0)
    return dict(zip(sample.keys.tolist(), sample.probabilities.tolist(), strict=True))


def test_update_priorities_skips_overwritten_keys():
    rng = np.random.default_rng(2)
    table = PrioritizedTable(4, SCHEMA, alpha=1.0, eps=1e-9)
    table.insert(batch(0, 4), np.ones(4))  # keys 0..3 in slots 0..3
    table.insert(batch(4, 2), np.ones(2))  # keys 4, 5 overwrite slots 0, 1
    applied = table.update_priorities(
        np.array([0, 2, 5, 99, -1, 1]), np.array([100.0, 3.0, 5.0, 7.0, 7.0, 50.0])
    )
    assert applied == 2  # keys 2 and 5; 0 and 1 were overwritten, 99 and -1 never existed
    got = probabilities_by_key(table, rng)
    expected = {4: 1 / 10, 5: 5 / 10, 2: 3 / 10, 3: 1 / 10}
    assert got.keys() == expected.keys()
    for key, p in expected.items():
        assert got[key] == pytest.approx(p, rel=1e-6)
    assert table.max_priority == 5.0


def test_update_priorities_errors_leave_the_table_unchanged():
    rng = np.random.default_rng(3)
    table = PrioritizedTable(4, SCHEMA, alpha=1.0)
    table.insert(batch(0, 4), np.array([1.0, 2.0, 3.0, 4.0]))
    before = probabilities_by_key(table, rng)
    for keys, priorities, message in [
        ([0, 1], [1.0, np.nan], r"finite values >= 0, got \[nan\]"),
        ([0, 1], [-1.0, 1.0], r"finite values >= 0, got \[-1.0\]"),
        ([0, 1], [1.0], r"priorities \(N,\), got int64 \(2,\) and \(1,\)"),
        ([0.0, 1.0], [1.0, 1.0], "integer keys"),
    ]:
        with pytest.raises(ValueError, match=message):
            table.update_priorities(np.array(keys), np.array(priorities))
    assert probabilities_by_key(table, rng) == pytest.approx(before)


def chi_square(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = counts.sum() * probabilities
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_sampling_frequencies_are_proportional(alpha):
    rng = np.random.default_rng(4)
    priorities = np.arange(1.0, 9.0)
    table = PrioritizedTable(8, SCHEMA, alpha=alpha, eps=1e-9)
    table.insert(batch(0, 8), priorities)
    counts = np.zeros(8)
    for _ in range(20):
        np.add.at(counts, table.sample(1000, rng, beta=0.5).keys, 1)
    assert table.sampled == 20_000
    target = priorities**alpha / (priorities**alpha).sum()
    # 7 degrees of freedom: P(chi2 > 30) < 1e-4 (stratified draws are tighter still)
    assert chi_square(counts, target) < 30
    assert chi_square(counts, np.full(8, 1 / 8)) > 300  # a wrong target is rejected


def test_alpha_zero_is_uniform():
    rng = np.random.default_rng(5)
    table = PrioritizedTable(10, SCHEMA, alpha=0.0)
    table.insert(batch(0, 10), np.logspace(-3, 3, 10))
    sample = table.sample(20_000, rng, beta=1.0)
    np.testing.assert_allclose(sample.probabilities, 0.1)
    np.testing.assert_array_equal(sample.weights, 1.0)
    counts = np.bincount(sample.keys, minlength=10)
    assert chi_square(counts, np.full(10, 0.1)) < 33  # 9 dof, P < 1e-4


@pytest.mark.parametrize(("capacity", "n"), [(16, 11), (16, 40)])  # partly full; wrapped
def test_importance_weights_match_the_formula(capacity, n):
    rng = np.random.default_rng(6)
    alpha, beta, eps = 0.7, 0.4, 1e-6
    table = PrioritizedTable(capacity, SCHEMA, alpha=alpha, eps=eps)
    priorities = rng.uniform(0.0, 5.0, n)
    table.insert(batch(0, n), priorities)
    held = np.arange(max(0, n - capacity), n)  # the keys still held
    q = (priorities[held] + eps) ** alpha
    p = q / q.sum()
    w = (len(held) * p) ** -beta / (len(held) * q.min() / q.sum()) ** -beta
    sample = table.sample(500, rng, beta)
    assert isinstance(sample, SampledItems)
    assert sample.probabilities.dtype == np.float64 and sample.weights.dtype == np.float32
    index = sample.keys - held[0]
    np.testing.assert_allclose(sample.probabilities, p[index], rtol=1e-12)
    np.testing.assert_allclose(sample.weights, w[index], rtol=1e-6)
    assert sample.weights.max() <= 1.0
    for _ in range(20):  # a batch of one: the maximum is over the table, not the batch
        one = table.sample(1, rng, beta)
        np.testing.assert_allclose(one.weights, w[one.keys - held[0]], rtol=1e-6)


def test_draws_are_stratified():
    rng = np.random.default_rng(9)
    priorities = np.arange(1.0, 9.0)
    table = PrioritizedTable(8, SCHEMA, alpha=1.0, eps=1e-9)
    table.insert(batch(0, 8), priorities)
    counts = np.bincount(table.sample(1000, rng, 0.5).keys, minlength=8)
    # one draw per 1/1000 of the mass: each count within 2 of its share (multinomial: sd ~12)
    assert np.abs(counts - 1000 * priorities / priorities.sum()).max() <= 2
    uniform = PrioritizedTable(9, SCHEMA, alpha=0.0)
    uniform.insert(batch(0, 9), np.ones(9))
    seen = set()
    for _ in range(50):
        keys = uniform.sample(3, rng, 0.5).keys
        np.testing.assert_array_equal(keys // 3, [0, 1, 2])  # draw j from the j-th third
        seen.update(keys.tolist())
    assert seen == set(range(9))  # at a random place within each third


class TopRng:
    """A generator whose uniform draws are all 1.0: the top of the mass, as rounding can give."""

    def random(self, n: int) -> np.ndarray:
        return np.ones(n)


def test_a_draw_at_the_top_of_the_mass_lands_on_a_held_item():
    table = PrioritizedTable(16, SCHEMA, alpha=1.0)
    table.insert(batch(0, 5), np.ones(5))
    sample = table.sample(4, TopRng(), 1.0)  # type: ignore[arg-type]
    assert sample.keys[-1] == 4 and (sample.keys >= 0).all()


def test_sample_errors():
    rng = np.random.default_rng(7)
    table = PrioritizedTable(4, SCHEMA)
    with pytest.raises(ValueError, match="non-empty table.*got 0 items"):
        table.sample(2, rng, 0.5)
    table.insert(batch(0, 2), np.ones(2))
    with pytest.raises(ValueError, match="batch_size >= 1.*batch_size 0"):
        table.sample(0, rng, 0.5)
    with pytest.raises(ValueError, match=r"beta: expected a value in \[0, 1\], got 1.5"):
        table.sample(2, rng, 1.5)
    assert table.sampled == 0


def test_zero_priorities_still_sampled_through_eps():
    rng = np.random.default_rng(8)
    table = PrioritizedTable(4, SCHEMA, alpha=1.0, eps=1e-3)
    table.insert(batch(0, 4), np.array([0.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(table.sample(100, rng, 1.0).probabilities, 0.25)


def test_nbytes_is_bounded_and_fixed():
    capacity = 1000
    table = PrioritizedTable(capacity, SCHEMA)
    nbytes = table.nbytes
    # fields, plus keys (8 B) and two trees over < 2 * capacity padded leaves (2 * 32 B)
    assert capacity * ITEM_BYTES <= nbytes <= capacity * (ITEM_BYTES + 72)
    for start in range(0, 3 * capacity, 250):
        table.insert(batch(start, 250), np.ones(250))
    assert table.nbytes == nbytes and len(table) == capacity
