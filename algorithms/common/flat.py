"""A torch module's parameters as the one flat float32 vector the shards serve.

The order is ``module.parameters()`` (a module's own parameters, then its
children's, each in registration order; shared parameters once), each
parameter flattened row-major: the same order in every process that builds the
same module. ``FlatModel`` binds a module to one contiguous buffer so that
loading new weights is one copy and the gradient is read without concatenating.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn


def param_count(module: nn.Module) -> int:
    """Elements over all parameters of ``module``: the length of its flat vector."""
    return sum(p.numel() for p in module.parameters())


def flat_parameters(module: nn.Module) -> np.ndarray:
    """A (param_count,) float32 numpy copy of the parameters."""
    with torch.no_grad():
        parts = [p.detach().reshape(-1).to("cpu", torch.float32) for p in module.parameters()]
        vector = torch.cat(parts) if parts else torch.zeros(0)
    return vector.numpy().copy()


def _as_vector(vector: np.ndarray | torch.Tensor, count: int) -> torch.Tensor:
    """``vector`` as a float32 tensor (no copy where possible), checked to be (count,)."""
    float32 = torch.float32 if isinstance(vector, torch.Tensor) else np.float32
    if vector.dtype != float32:
        raise ValueError(f"flat parameters: expected float32, got {vector.dtype}")
    if tuple(vector.shape) != (count,):
        raise ValueError(f"flat parameters: expected shape ({count},), got {tuple(vector.shape)}")
    if isinstance(vector, np.ndarray):
        with warnings.catch_warnings():  # a read-only view (the weights): only read from here
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(np.ascontiguousarray(vector))
    return vector


def load_flat(module: nn.Module, vector: np.ndarray | torch.Tensor) -> None:
    """Copy a (param_count,) float32 numpy or torch vector into the parameters.

    Raises:
        ValueError: the vector is not float32 or not of length ``param_count(module)``.
    """
    source = _as_vector(vector, param_count(module))
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            p.copy_(source[offset : offset + n].view_as(p))
            offset += n


def flat_gradients(module: nn.Module, out: np.ndarray | None = None) -> np.ndarray:
    """The (param_count,) float32 gradient; zeros for parameters without ``.grad``.

    ``out``: a (param_count,) float32 array to fill instead of allocating one.
    """
    count = param_count(module)
    if out is None:
        out = np.empty(count, np.float32)
    target = _as_vector(out, count)
    offset = 0
    for p in module.parameters():
        n = p.numel()
        if p.grad is None:
            target[offset : offset + n].zero_()
        else:
            target[offset : offset + n].copy_(p.grad.reshape(-1))
        offset += n
    return out


def initial_vector(build_module: Callable[[], nn.Module], seed: int | Sequence[int]) -> np.ndarray:
    """The flat parameters of ``build_module()`` built under a private seed.

    The module is built with torch's global RNG seeded from ``seed`` (an int or a
    sequence of ints, mixed by ``numpy.random.SeedSequence``) inside
    ``torch.random.fork_rng``, so the caller's RNG state is untouched and every
    process gets the same (param_count,) float32 vector for the same seed.
    """
    torch_seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        module = build_module()
    return flat_parameters(module)


class FlatModel:
    """A module whose parameters and gradients are views into two flat float32 buffers.

    After binding, ``load(vector)`` is one copy into ``vector``, and backward passes
    accumulate straight into the gradient buffer (``grad_vector()``). Move the
    module to its device before binding: ``module.to(...)`` afterwards breaks the
    views. The module's parameters must all be float32.
    """

    def __init__(self, module: nn.Module) -> None:
        params = list(module.parameters())
        if not params:
            raise ValueError("FlatModel: expected a module with parameters, got none")
        for p in params:
            if p.dtype != torch.float32:
                raise ValueError(f"FlatModel: expected float32 parameters, got {p.dtype}")
        device = params[0].device
        count = sum(p.numel() for p in params)
        self.module = module
        self._params = params
        self._vector = torch.empty(count, dtype=torch.float32, device=device)
        self._grad = torch.zeros(count, dtype=torch.float32, device=device)
        self._grad_views: list[torch.Tensor] = []
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                view = self._vector[offset : offset + n].view_as(p)
                view.copy_(p)
                p.data = view
                grad_view = self._grad[offset : offset + n].view_as(p)
                p.grad = grad_view
                self._grad_views.append(grad_view)
                offset += n

    @property
    def param_count(self) -> int:
        return self._vector.numel()

    @property
    def vector(self) -> torch.Tensor:
        """The live (param_count,) parameter buffer (writing to it changes the module)."""
        return self._vector

    def load(self, vector: np.ndarray | torch.Tensor) -> None:
        """Copy a (param_count,) float32 vector into the parameters (one copy)."""
        source = _as_vector(vector, self.param_count)
        with torch.no_grad():
            self._vector.copy_(source)

    def numpy(self) -> np.ndarray:
        """A float32 numpy copy of the parameters."""
        return self._vector.detach().cpu().numpy().copy()

    def _rebind_gradients(self) -> None:
        """Point every ``p.grad`` back at the buffer (``zero_grad(set_to_none=True)``,
        an optimizer or autograd may have replaced it), keeping its current values."""
        for p, grad_view in zip(self._params, self._grad_views, strict=True):
            grad = p.grad
            if grad is None:
                grad_view.zero_()
            elif grad.data_ptr() != grad_view.data_ptr():
                grad_view.copy_(grad)
            else:
                continue
            p.grad = grad_view

    def grad_vector(self) -> torch.Tensor:
        """The live (param_count,) gradient buffer: what backward accumulated since ``zero_grad``.

        Copy it (``.cpu().numpy().copy()``) before keeping it past the next backward.
        """
        self._rebind_gradients()
        return self._grad

    def zero_grad(self) -> None:
        """Zero the gradient buffer (the gradients stay views into it)."""
        self._rebind_gradients()
        self._grad.zero_()
