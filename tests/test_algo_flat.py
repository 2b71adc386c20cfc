"""Flat float32 parameter vectors of torch modules (algorithms.common.flat)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from relaax_zmq.algorithms.common.flat import (
    FlatModel,
    flat_gradients,
    flat_parameters,
    initial_vector,
    load_flat,
    param_count,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TwoLayers(nn.Module):
    """A small network with an unused parameter (no gradient ever flows to it)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 5)
        self.second = nn.Linear(5, 2)
        self.unused = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.tanh(self.first(x)))


def build() -> TwoLayers:
    return TwoLayers()


def concat_grads(module: nn.Module) -> np.ndarray:
    return torch.cat(
        [
            p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
            for p in module.parameters()
        ]
    ).numpy()


def backward_once(module: nn.Module, seed: int = 0) -> None:
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(seed))
    module(x).pow(2).sum().backward()


def test_param_count_is_sum_of_elements() -> None:
    module = build()
    assert param_count(module) == 3 * 5 + 5 + 5 * 2 + 2 + 4
    assert flat_parameters(module).shape == (param_count(module),)


def test_flat_parameters_order_and_copy() -> None:
    module = build()
    vector = flat_parameters(module)
    assert vector.dtype == np.float32
    # module.parameters() order: its own parameters, then its children's
    np.testing.assert_array_equal(vector[:4], np.ones(4, np.float32))
    np.testing.assert_array_equal(vector[4:19], module.first.weight.detach().numpy().ravel())
    vector[:] = 0.0  # a copy: the module is untouched
    assert module.unused.detach().sum().item() == 4.0


@pytest.mark.parametrize("as_torch", [False, True])
def test_load_flat_round_trip(as_torch: bool) -> None:
    module = build()
    target = np.arange(param_count(module), dtype=np.float32) / 10
    load_flat(module, torch.from_numpy(target) if as_torch else target)
    np.testing.assert_array_equal(flat_parameters(module), target)
    np.testing.assert_array_equal(module.second.bias.detach().numpy(), target[-2:])


def test_load_flat_rejects_length_and_dtype() -> None:
    module = build()
    n = param_count(module)
    with pytest.raises(ValueError, match=rf"expected shape \({n},\), got \({n - 1},\)"):
        load_flat(module, np.zeros(n - 1, np.float32))
    with pytest.raises(ValueError, match="expected float32, got float64"):
        load_flat(module, np.zeros(n, np.float64))
    with pytest.raises(ValueError, match="expected float32"):
        load_flat(module, torch.zeros(n, dtype=torch.float64))


def test_flat_gradients_equal_concatenated_grads() -> None:
    module = build()
    assert not flat_gradients(module).any()  # no backward yet: all zeros
    backward_once(module)
    grads = flat_gradients(module)
    np.testing.assert_array_equal(grads, concat_grads(module))
    assert grads[4:].any() and not grads[:4].any()  # the unused parameter has no grad
    out = np.full(param_count(module), 7.0, np.float32)
    assert flat_gradients(module, out=out) is out
    np.testing.assert_array_equal(out, grads)


def test_flat_model_parameters_are_views_of_the_buffer() -> None:
    module = build()
    before = flat_parameters(module)
    flat = FlatModel(module)
    np.testing.assert_array_equal(flat.vector.numpy(), before)
    start = flat.vector.data_ptr()
    end = start + flat.param_count * 4
    pointers = [p.data_ptr() for p in module.parameters()]
    assert all(start <= ptr < end for ptr in pointers)

    target = np.linspace(-1, 1, flat.param_count, dtype=np.float32)
    flat.load(target)
    assert [p.data_ptr() for p in module.parameters()] == pointers  # still views
    np.testing.assert_array_equal(flat_parameters(module), target)
    np.testing.assert_array_equal(flat.numpy(), target)
    x = torch.ones(1, 3)
    expected = TwoLayers()
    load_flat(expected, target)
    torch.testing.assert_close(module(x), expected(x))

    flat.vector[:4] = 3.0  # writing the buffer changes the module
    assert module.unused.detach().tolist() == [3.0] * 4


def test_flat_model_load_checks() -> None:
    flat = FlatModel(build())
    with pytest.raises(ValueError, match="expected float32, got float64"):
        flat.load(np.zeros(flat.param_count))
    with pytest.raises(ValueError, match="expected shape"):
        flat.load(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="expected float32 parameters"):
        FlatModel(nn.Linear(2, 2).double())


def test_flat_model_gradients_accumulate_into_buffer() -> None:
    module = build()
    flat = FlatModel(module)
    backward_once(module, seed=1)
    first = flat.grad_vector().clone()
    np.testing.assert_array_equal(first.numpy(), concat_grads(module))
    assert first[4:].abs().sum() > 0 and not first[:4].any()
    backward_once(module, seed=2)
    reference = build()
    load_flat(reference, flat.numpy())
    backward_once(reference, seed=1)
    backward_once(reference, seed=2)
    torch.testing.assert_close(flat.grad_vector(), torch.from_numpy(flat_gradients(reference)))

    flat.zero_grad()
    assert not flat.grad_vector().any()
    assert all(p.grad is not None and not p.grad.any() for p in module.parameters())


def test_flat_model_survives_set_to_none_and_optimizer_steps() -> None:
    module = build()
    flat = FlatModel(module)
    module.zero_grad(set_to_none=True)
    backward_once(module, seed=3)
    grad = flat.grad_vector()
    np.testing.assert_array_equal(grad.numpy(), concat_grads(module))
    assert all(p.grad.data_ptr() >= grad.data_ptr() for p in module.parameters())
    before = flat.numpy()
    torch.optim.SGD(module.parameters(), lr=0.5).step()  # in place: the buffer moves
    np.testing.assert_allclose(flat.numpy(), before - 0.5 * grad.numpy(), rtol=1e-6)


def test_initial_vector_is_deterministic_and_isolated() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = initial_vector(build, 7)
    second = initial_vector(build, 7)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert first.dtype == np.float32 and first.shape == (param_count(build()),)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, initial_vector(build, 8))
    np.testing.assert_array_equal(initial_vector(build, [7, 1]), initial_vector(build, [7, 1]))
    assert not np.array_equal(initial_vector(build, [7, 1]), initial_vector(build, [7, 2]))
