"""The parameter-server kernels: compiled, numpy reference and torch.optim must agree.

Every test runs against both backends (``relaax_zmq._kernels`` is skipped, with
the reason, only when it cannot be imported). Optimizer steps are checked
against ``torch.optim`` over several steps; aggregation and norms against
float64 numpy. Sizes 0, 1, 7 and 1001 run for every function and backend; one
10**7 case per function compares all implementations at once.
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relaax_zmq import kernels as public
from relaax_zmq.kernels import reference

# Tolerance between implementations: float32 arithmetic in the same operation
# order, but torch (and a -march=native build) may fuse multiply-adds, so results
# may differ by a few ulp per step. Aggregation is bitwise identical between our
# two backends (the same float32 additions in the same order).
RTOL = 1e-5
ATOL = 1e-6
SIZES = [0, 1, 7, 1001]
LARGE = 10**7
STEPS = 3


def _compiled() -> ModuleType:
    try:
        return importlib.import_module("relaax_zmq._kernels")
    except ImportError as exc:
        pytest.skip(f"compiled backend relaax_zmq._kernels cannot be imported: {exc}")


@pytest.fixture(params=["reference", "compiled"])
def kernels(request: pytest.FixtureRequest) -> ModuleType:
    """Each backend in turn."""
    return reference if request.param == "reference" else _compiled()


def _rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(list(seed))


def _randn(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n, dtype=np.float32)


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------- aggregation


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("count", [1, 2, 5, 9])
def test_sum_and_mean_match_float64(kernels: ModuleType, n: int, count: int) -> None:
    rng = _rng(n, count)
    grads = [_randn(rng, n) for _ in range(count)]
    total = np.sum(np.asarray(grads, dtype=np.float64), axis=0)
    out = np.full(n, 7.0, np.float32)
    kernels.sum_into(out, grads)
    _close(out, total)
    kernels.mean_into(out, grads)
    _close(out, total / count)


@pytest.mark.parametrize("n", SIZES)
def test_backends_aggregate_bitwise_alike(n: int) -> None:
    compiled = _compiled()
    grads = [_randn(_rng(n, k), n) * 10.0**k for k in range(11)]  # varied magnitudes
    for name in ("sum_into", "mean_into"):
        ours, ref = np.empty(n, np.float32), np.empty(n, np.float32)
        getattr(compiled, name)(ours, grads)
        getattr(reference, name)(ref, grads)
        np.testing.assert_array_equal(ours, ref, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 40).flatmap(
        lambda n: st.lists(hnp.arrays(np.float32, n, elements=st.floats(width=32)), max_size=10)
    )
)
def test_backends_aggregate_special_values_alike(grads: list[np.ndarray]) -> None:
    compiled, n = _compiled(), len(grads[0]) if grads else 5
    ours, ref = np.empty(n, np.float32), np.empty(n, np.float32)
    compiled.sum_into(ours, grads)
    reference.sum_into(ref, grads)
    np.testing.assert_array_equal(ours, ref)  # inf and nan included
    numbers = ~np.isnan(ref)  # a nan's sign may depend on the order of the operands
    assert np.array_equal(np.signbit(ours[numbers]), np.signbit(ref[numbers]))  # -0.0
    if grads:
        compiled.mean_into(ours, grads)
        reference.mean_into(ref, grads)
        np.testing.assert_array_equal(ours, ref)


def test_sum_of_nothing_is_zeros(kernels: ModuleType) -> None:
    out = np.full(1001, np.nan, np.float32)
    kernels.sum_into(out, [])
    np.testing.assert_array_equal(out, np.zeros(1001, np.float32))


def test_same_gradient_twice_is_allowed(kernels: ModuleType) -> None:
    g = _randn(_rng(1), 7)
    out = np.empty(7, np.float32)
    kernels.sum_into(out, [g, g])
    np.testing.assert_array_equal(out, g + g)


@pytest.mark.parametrize("n", SIZES)
def test_scaled_add(kernels: ModuleType, n: int) -> None:
    rng = _rng(n)
    out, x = _randn(rng, n), _randn(rng, n)
    expected = out.astype(np.float64) - 0.25 * x.astype(np.float64)
    kernels.scaled_add(out, x, -0.25)
    _close(out, expected)


# ---------------------------------------------------------- norms and clipping


@pytest.mark.parametrize("n", SIZES)
def test_global_norm_over_buffers_of_several_sizes(kernels: ModuleType, n: int) -> None:
    rng = _rng(n)
    buffers = [_randn(rng, n), _randn(rng, 3), np.empty(0, np.float32), _randn(rng, 70000)]
    flat = np.concatenate(buffers).astype(np.float64)
    assert kernels.global_norm(buffers) == pytest.approx(np.sqrt(flat @ flat), rel=1e-12)
    assert kernels.global_norm([]) == 0.0


def test_global_norm_accumulates_in_float64(kernels: ModuleType) -> None:
    # 2**25 ones: a float32 running sum would stop growing at 2**24.
    ones = np.ones(2**25, np.float32)
    assert kernels.global_norm([ones]) == math.sqrt(2**25)


@pytest.mark.parametrize("n", [1, 7, 1001])
def test_clip_scales_to_max_norm_only_above_it(kernels: ModuleType, n: int) -> None:
    rng = _rng(n)
    buffers = [_randn(rng, n) + 1, _randn(rng, 5)]
    before = [b.copy() for b in buffers]
    norm = kernels.global_norm(buffers)
    assert kernels.clip_by_global_norm(buffers, norm * 2) == norm
    for b, old in zip(buffers, before, strict=True):
        np.testing.assert_array_equal(b, old)
    assert kernels.clip_by_global_norm(buffers, norm / 4) == norm
    assert kernels.global_norm(buffers) == pytest.approx(norm / 4, rel=RTOL)
    for b, old in zip(buffers, before, strict=True):
        _close(b, old / 4)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_leaves_non_finite_buffers_alone(kernels: ModuleType, bad: float) -> None:
    buffers = [np.array([3.0, bad, 4.0], np.float32)]
    before = buffers[0].copy()
    norm = kernels.clip_by_global_norm(buffers, 1.0)
    assert not np.isfinite(norm)
    np.testing.assert_array_equal(buffers[0], before)


# ------------------------------------------------------------------ optimizers


def _grads(n: int, steps: int, seed: int) -> list[np.ndarray]:
    rng = _rng(n, seed)
    return [_randn(rng, n) for _ in range(steps)]


def _torch_run(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    param: np.ndarray,
    grads: list[np.ndarray],
) -> tuple[np.ndarray, dict]:
    """Parameters and optimizer state after ``grads`` went through torch.optim."""
    p = torch.nn.Parameter(torch.from_numpy(param.copy()))
    optimizer = make([p])
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        optimizer.step()
    state = {k: v.numpy() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
    return p.detach().numpy(), state


SGD_CASES = {
    "plain": dict(lr=0.1),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum": dict(lr=0.1, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02),
    "nesterov": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
}


def _sgd_ours(kernels: ModuleType, hp: dict, param: np.ndarray, grads: list) -> tuple:
    param, buf = param.copy(), np.zeros_like(param)
    for t, g in enumerate(grads):
        kernels.sgd_step(param, g, buf, first_step=t == 0, **hp)
    return param, buf


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_matches_torch(kernels: ModuleType, case: str, n: int) -> None:
    hp, param, grads = SGD_CASES[case], _randn(_rng(n), n), _grads(n, STEPS, 1)
    ours, buf = _sgd_ours(kernels, hp, param, grads)
    theirs, state = _torch_run(lambda p: torch.optim.SGD(p, **hp), param, grads)
    _close(ours, theirs)
    if hp.get("momentum"):
        _close(buf, state["momentum_buffer"])


def test_sgd_without_momentum_needs_no_buffer(kernels: ModuleType) -> None:
    param, grad = np.ones(7, np.float32), np.full(7, 2.0, np.float32)
    kernels.sgd_step(param, grad, None, lr=0.25)
    np.testing.assert_array_equal(param, np.full(7, 0.5, np.float32))


def _rmsprop_ours(kernels: ModuleType, hp: dict, param: np.ndarray, grads: list) -> tuple:
    param, square_avg = param.copy(), np.zeros_like(param)
    for g in grads:
        kernels.rmsprop_step(param, g, square_avg, **hp)
    return param, square_avg


@pytest.mark.parametrize("n", SIZES)
def test_rmsprop_eps_outside_sqrt_matches_torch(kernels: ModuleType, n: int) -> None:
    param, grads = _randn(_rng(n), n), _grads(n, STEPS, 2)
    hp = dict(lr=0.01, decay=0.9, eps=1e-3, eps_inside_sqrt=False)
    ours, square_avg = _rmsprop_ours(kernels, hp, param, grads)
    theirs, state = _torch_run(
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-3), param, grads
    )
    _close(ours, theirs)
    _close(square_avg, state["square_avg"])


@pytest.mark.parametrize("n", SIZES)
def test_rmsprop_eps_inside_sqrt_matches_float64(kernels: ModuleType, n: int) -> None:
    param, grads = _randn(_rng(n), n), _grads(n, STEPS, 3)
    ours, _ = _rmsprop_ours(kernels, dict(lr=0.01, decay=0.9, eps=0.1), param, grads)
    p, s = param.astype(np.float64), np.zeros(n)
    for g in grads:
        s = 0.9 * s + 0.1 * g.astype(np.float64) ** 2
        p -= 0.01 * g / np.sqrt(s + 0.1)
    _close(ours, p)


ADAM_CASES = {
    "plain": dict(lr=1e-2),
    "weight_decay": dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
}


def _adam_ours(kernels: ModuleType, hp: dict, param: np.ndarray, grads: list) -> tuple:
    hp = dict(hp)
    beta1, beta2 = hp.pop("betas", (0.9, 0.999))
    param, exp_avg, exp_avg_sq = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        kernels.adam_step(param, g, exp_avg, exp_avg_sq, t, beta1=beta1, beta2=beta2, **hp)
    return param, exp_avg, exp_avg_sq


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ADAM_CASES)
def test_adam_matches_torch(kernels: ModuleType, case: str, n: int) -> None:
    hp, param, grads = ADAM_CASES[case], _randn(_rng(n), n), _grads(n, STEPS, 4)
    ours, exp_avg, exp_avg_sq = _adam_ours(kernels, hp, param, grads)
    theirs, state = _torch_run(lambda p: torch.optim.Adam(p, **hp), param, grads)
    _close(ours, theirs)
    _close(exp_avg, state["exp_avg"])
    _close(exp_avg_sq, state["exp_avg_sq"])


# ------------------------------------------------------ 10**7 elements, once each


def _large_aggregation(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    out = np.empty(LARGE, np.float32)
    k.mean_into(out, data[:3])
    mean = out.copy()
    k.sum_into(out, data[:3])
    return [mean, out]


def _large_scaled_add(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    out = data[0].copy()
    k.scaled_add(out, data[1], 0.5)
    return [out]


def _large_norms(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    buffers = [data[0].copy(), data[1][:12345].copy()]
    norm = k.clip_by_global_norm(buffers, 100.0)
    return [np.array([norm, k.global_norm(buffers)]), *buffers]


def _large_sgd(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    return list(_sgd_ours(k, SGD_CASES["nesterov"], data[0], data[1:3]))


def _large_rmsprop(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    return list(_rmsprop_ours(k, dict(lr=0.01, eps=1e-3), data[0], data[1:3]))


def _large_adam(k: ModuleType, data: list[np.ndarray]) -> list[np.ndarray]:
    return list(_adam_ours(k, ADAM_CASES["weight_decay"], data[0], data[1:3]))


def _torch_large(case: str, data: list[np.ndarray]) -> list[np.ndarray] | None:
    """torch.optim's results for the optimizer cases (None for the others)."""
    param, grads = data[0], data[1:3]
    if case == "sgd":
        hp = SGD_CASES["nesterov"]
        p, state = _torch_run(lambda q: torch.optim.SGD(q, **hp), param, grads)
        return [p, state["momentum_buffer"]]
    if case == "adam":
        hp = ADAM_CASES["weight_decay"]
        p, state = _torch_run(lambda q: torch.optim.Adam(q, **hp), param, grads)
        return [p, state["exp_avg"], state["exp_avg_sq"]]
    return None


LARGE_CASES = {
    "aggregation": _large_aggregation,
    "scaled_add": _large_scaled_add,
    "norms": _large_norms,
    "sgd": _large_sgd,
    "rmsprop": _large_rmsprop,
    "adam": _large_adam,
}


@pytest.fixture(scope="module")
def large_data() -> list[np.ndarray]:
    rng = _rng(10**7)
    return [_randn(rng, LARGE) for _ in range(3)]


@pytest.mark.parametrize("case", LARGE_CASES)
def test_large_buffers_agree(case: str, large_data: list[np.ndarray]) -> None:
    run = LARGE_CASES[case]
    ours, ref = run(_compiled(), large_data), run(reference, large_data)
    for a, b in zip(ours, ref, strict=True):
        _close(a, b)
    theirs = _torch_large(case, large_data)
    if theirs is not None:
        for a, b in zip(ours, theirs, strict=True):
            _close(a, b)


# ------------------------------------------------------------------- the GIL

GIL_CALLS = {
    "sum_into": lambda k, a, b: k.sum_into(np.empty_like(a), [a, b] * 8),
    "adam_step": lambda k, a, b: k.adam_step(a, b, np.zeros_like(a), np.zeros_like(a), 1, 0.1),
}


@pytest.mark.parametrize("call", GIL_CALLS)
def test_compiled_loops_release_the_gil(call: str, large_data: list[np.ndarray]) -> None:
    # With a switch interval of minutes, the main thread can only run while the
    # worker thread is inside the kernel if the kernel released the GIL.
    compiled, a, b = _compiled(), large_data[0].copy(), large_data[1]
    started, finished = threading.Event(), []

    def work() -> None:
        started.set()
        GIL_CALLS[call](compiled, a, b)
        finished.append(True)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        ran_during_kernel = not finished
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert finished and ran_during_kernel


# ------------------------------------------------------------------ bad input

N = 1000


def _f32(n: int = N) -> np.ndarray:
    return np.zeros(n, np.float32)


def _unaligned(n: int = N) -> np.ndarray:
    return np.frombuffer(bytearray(4 * n + 1), dtype=np.float32, count=n, offset=1)


def _read_only(n: int = N) -> np.ndarray:
    a = _f32(n)
    a.flags.writeable = False
    return a


SHARED = _f32()

BAD_INPUT = {
    "out dtype": (
        lambda k: k.sum_into(np.zeros(N), [_f32()]),
        TypeError,
        "out: expected float32, got float64",
    ),
    "grad dtype": (
        lambda k: k.sgd_step(_f32(), np.zeros(N, np.float16), None, 0.1),
        TypeError,
        "grad: expected float32, got float16",
    ),
    "not an array": (
        lambda k: k.scaled_add(_f32(), [0.0] * N, 1.0),
        TypeError,
        "x: expected a numpy.ndarray, got list",
    ),
    "bare array as grads": (
        lambda k: k.sum_into(_f32(), _f32()),
        TypeError,
        "grads: expected a sequence of arrays, got ndarray",
    ),
    "non-contiguous": (
        lambda k: k.mean_into(_f32(), [_f32(), _f32(2 * N)[::2]]),
        ValueError,
        r"grads\[1\]: expected a C-contiguous array, got a strided one",
    ),
    "2-D": (
        lambda k: k.global_norm([_f32(), np.zeros((10, 100), np.float32)]),
        ValueError,
        r"buffers\[1\]: expected a 1-D array, got 2-D",
    ),
    "length": (
        lambda k: k.sum_into(_f32(), [_f32(), _f32(), _f32(), _f32(N - 1)]),
        ValueError,
        r"grads\[3\]: expected 1000 elements, got 999",
    ),
    "state length": (
        lambda k: k.adam_step(_f32(), _f32(), _f32(), _f32(N + 1), 1, 0.1),
        ValueError,
        "exp_avg_sq: expected 1000 elements, got 1001",
    ),
    "unaligned": (
        lambda k: k.rmsprop_step(_f32(), _unaligned(), _f32(), 0.1),
        ValueError,
        "grad: expected an aligned array, got an unaligned one",
    ),
    "read-only": (
        lambda k: k.clip_by_global_norm([_f32(), _read_only()], 1.0),
        ValueError,
        r"buffers\[1\]: expected a writeable array, got a read-only one",
    ),
    "read-only grad is fine, read-only state is not": (
        lambda k: k.sgd_step(_f32(), _read_only(), _read_only(), 0.1, momentum=0.9),
        ValueError,
        "momentum_buf: expected a writeable array, got a read-only one",
    ),
    "overlap": (
        lambda k: k.sum_into(SHARED, [_f32(), SHARED[:]]),
        ValueError,
        r"out: must not overlap grads\[1\]",
    ),
    "state aliasing": (
        lambda k: k.adam_step(_f32(), _f32(), SHARED, SHARED, 1, 0.1),
        ValueError,
        "exp_avg_sq: must not overlap exp_avg",
    ),
    "empty mean": (
        lambda k: k.mean_into(_f32(), []),
        ValueError,
        "grads: expected at least one array, got none",
    ),
    "step zero": (
        lambda k: k.adam_step(_f32(), _f32(), _f32(), _f32(), 0, 0.1),
        ValueError,
        "step: expected an integer >= 1, got 0",
    ),
    "step float": (
        lambda k: k.adam_step(_f32(), _f32(), _f32(), _f32(), 1.0, 0.1),
        TypeError,
        "step: expected an integer, got float",
    ),
    "negative lr": (
        lambda k: k.sgd_step(_f32(), _f32(), None, -0.1),
        ValueError,
        "lr: expected a finite number >= 0.0, got -0.1",
    ),
    "beta1 of one": (
        lambda k: k.adam_step(_f32(), _f32(), _f32(), _f32(), 1, 0.1, beta1=1.0),
        ValueError,
        r"beta1: expected a number in \[0.0, 1.0\), got 1.0",
    ),
    "nan alpha": (
        lambda k: k.scaled_add(_f32(), _f32(), float("nan")),
        ValueError,
        "alpha: expected a finite number, got nan",
    ),
    "string max_norm": (
        lambda k: k.clip_by_global_norm([_f32()], "1"),
        TypeError,
        "max_norm: expected a real number, got str",
    ),
    "missing momentum buffer": (
        lambda k: k.sgd_step(_f32(), _f32(), None, 0.1, momentum=0.9),
        TypeError,
        "momentum_buf: expected a numpy.ndarray, got NoneType",
    ),
    "nesterov without momentum": (
        lambda k: k.sgd_step(_f32(), _f32(), _f32(), 0.1, nesterov=True),
        ValueError,
        "nesterov: expected momentum > 0 and dampening 0",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_with_a_clear_message(kernels: ModuleType, case: str) -> None:
    call, error, message = BAD_INPUT[case]
    with pytest.raises(error, match=message):
        call(kernels)


def test_refused_input_leaves_every_buffer_untouched(kernels: ModuleType) -> None:
    buffers = [np.full(7, 3.0, np.float32), np.full(7, 4.0, np.float32), _read_only(7)]
    param, grad = np.ones(7, np.float32), np.ones(7, np.float32)
    with pytest.raises(ValueError, match="writeable"):
        kernels.clip_by_global_norm(buffers, 1.0)
    with pytest.raises(ValueError, match="exp_avg_sq"):
        kernels.adam_step(param, grad, np.zeros(7, np.float32), _f32(6), 1, 0.1)
    np.testing.assert_array_equal(buffers[0], np.full(7, 3.0, np.float32))
    np.testing.assert_array_equal(param, np.ones(7, np.float32))


def test_public_module_exports_one_backend() -> None:
    chosen = reference if public.BACKEND == "python" else _compiled()
    for name in public.__all__:
        if name != "BACKEND":
            assert getattr(public, name) is getattr(chosen, name), name
