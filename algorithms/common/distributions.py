"""Action distributions of policy heads, batched over B sessions or steps.

``Categorical`` takes (B, n) logits, ``DiagGaussian`` a (B, d) mean and a log
standard deviation that broadcasts to it (a state-independent (d,) parameter, or
(B, d)). Every method returns per-row values: ``log_prob``, ``entropy`` and
``kl`` are (B,), summed over the action dimensions of a Gaussian.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


class Distribution(ABC):
    """What every policy distribution offers."""

    @abstractmethod
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One action per row, detached from the graph."""

    @abstractmethod
    def mode(self) -> torch.Tensor:
        """The most likely action per row (greedy / exploit)."""

    @abstractmethod
    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-probability (density) of ``actions``."""

    @abstractmethod
    def entropy(self) -> torch.Tensor:
        """(B,) entropy."""

    @abstractmethod
    def kl(self, other: Distribution) -> torch.Tensor:
        """(B,) ``KL(self || other)``; ``other`` of the same kind and shape."""


def _same_kind(mine: Distribution, other: Distribution) -> None:
    if type(other) is not type(mine):
        raise ValueError(f"kl: expected a {type(mine).__name__}, got {type(other).__name__}")


class Categorical(Distribution):
    """Discrete actions from (B, n) unnormalized logits; actions are (B,) int64 indices."""

    def __init__(self, logits: torch.Tensor) -> None:
        if logits.dim() < 1:
            raise ValueError(f"logits: expected (..., n), got shape {tuple(logits.shape)}")
        self.log_probs = F.log_softmax(logits, dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        """(B, n) action probabilities."""
        return self.log_probs.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = self.probs.detach().reshape(-1, self.log_probs.shape[-1])
        indices = torch.multinomial(probs, 1, generator=generator)
        return indices.reshape(self.log_probs.shape[:-1])

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        index = actions.long().unsqueeze(-1)
        return self.log_probs.gather(-1, index).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.probs * self.log_probs).sum(dim=-1)

    def kl(self, other: Distribution) -> torch.Tensor:
        _same_kind(self, other)
        assert isinstance(other, Categorical)
        return (self.probs * (self.log_probs - other.log_probs)).sum(dim=-1)


class DiagGaussian(Distribution):
    """Continuous actions from a (B, d) mean and a log std broadcasting to it.

    With ``squash=True`` actions are ``tanh`` of the Gaussian sample, in (-1, 1):
    ``log_prob`` adds the change-of-variables term ``-sum log(1 - tanh(u)^2)``;
    ``entropy`` and ``kl`` have no closed form then and raise ValueError.
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, squash: bool = False) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.squash = squash

    @property
    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample that keeps gradients through the mean and log std (reparameterized)."""
        noise = torch.randn(
            self.mean.shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device
        )
        u = self.mean + self.std * noise
        return torch.tanh(u) if self.squash else u

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(generator)

    def mode(self) -> torch.Tensor:
        return torch.tanh(self.mean) if self.squash else self.mean

    def _gaussian_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        z = (u - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - _HALF_LOG_2PI).sum(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        if not self.squash:
            return self._gaussian_log_prob(actions)
        eps = torch.finfo(actions.dtype).eps
        u = torch.atanh(actions.clamp(-1.0 + eps, 1.0 - eps))
        # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), stable for large |u|
        log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))
        return self._gaussian_log_prob(u) - log_det.sum(dim=-1)

    def _check_closed_form(self, what: str) -> None:
        if self.squash:
            raise ValueError(f"{what}: expected a Gaussian without tanh squashing (no closed form)")

    def entropy(self) -> torch.Tensor:
        self._check_closed_form("entropy")
        return (self.log_std + 0.5 + _HALF_LOG_2PI).sum(dim=-1)

    def kl(self, other: Distribution) -> torch.Tensor:
        _same_kind(self, other)
        assert isinstance(other, DiagGaussian)
        self._check_closed_form("kl")
        other._check_closed_form("kl")
        var_ratio = (2.0 * (self.log_std - other.log_std)).exp()
        mean_term = ((self.mean - other.mean) / other.std).pow(2)
        terms = 0.5 * (var_ratio + mean_term - 1.0) - (self.log_std - other.log_std)
        return terms.sum(dim=-1)
