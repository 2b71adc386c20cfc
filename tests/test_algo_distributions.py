"""Policy distributions (algorithms.common.distributions) against torch.distributions."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import distributions as td

from relaax_zmq.algorithms.common.distributions import Categorical, DiagGaussian


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float64)


def test_categorical_matches_torch() -> None:
    logits, other_logits = randn(6, 4, seed=0) * 2, randn(6, 4, seed=1)
    ours, theirs = Categorical(logits), td.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 3, 3, 1])
    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), theirs.entropy())
    torch.testing.assert_close(ours.probs, theirs.probs)
    kl = td.kl_divergence(theirs, td.Categorical(logits=other_logits))
    torch.testing.assert_close(ours.kl(Categorical(other_logits)), kl)
    assert torch.equal(ours.mode(), logits.argmax(dim=-1))
    torch.testing.assert_close(ours.kl(ours), torch.zeros(6, dtype=torch.float64))


def test_categorical_uniform_entropy_is_log_n() -> None:
    entropy = Categorical(torch.zeros(3, 5)).entropy()
    torch.testing.assert_close(entropy, torch.full((3,), math.log(5)))


def test_categorical_sampling_is_seeded_and_follows_probs() -> None:
    probs = torch.tensor([0.1, 0.6, 0.3])
    dist = Categorical(probs.log().expand(20_000, 3))
    first, second = dist.sample(gen(5)), dist.sample(gen(5))
    assert first.shape == (20_000,) and first.dtype == torch.int64
    assert torch.equal(first, second)
    assert not torch.equal(first, dist.sample(gen(6)))
    frequencies = torch.bincount(first, minlength=3).float() / 20_000
    torch.testing.assert_close(frequencies, probs, atol=0.015, rtol=0)


def test_gaussian_matches_torch_and_hand_formulas() -> None:
    mean, log_std = randn(5, 3, seed=2), randn(3, seed=3) * 0.5
    ours = DiagGaussian(mean, log_std)
    theirs = td.Independent(td.Normal(mean, log_std.exp().expand_as(mean)), 1)
    actions = randn(5, 3, seed=4)
    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), theirs.entropy())
    by_hand = (0.5 * torch.log(2 * math.pi * math.e * (2 * log_std).exp())).sum().expand(5)
    torch.testing.assert_close(ours.entropy(), by_hand)
    assert torch.equal(ours.mode(), mean)


def test_gaussian_kl_matches_torch_and_hand_formula() -> None:
    m1, m2 = randn(4, 2, seed=5), randn(4, 2, seed=6)
    s1, s2 = randn(4, 2, seed=7) * 0.3, randn(2, seed=8) * 0.3
    ours = DiagGaussian(m1, s1).kl(DiagGaussian(m2, s2))
    sd1, sd2 = s1.exp(), s2.exp().expand_as(m2)
    theirs = td.kl_divergence(
        td.Independent(td.Normal(m1, sd1), 1), td.Independent(td.Normal(m2, sd2), 1)
    )
    torch.testing.assert_close(ours, theirs)
    by_hand = (torch.log(sd2 / sd1) + (sd1**2 + (m1 - m2) ** 2) / (2 * sd2**2) - 0.5).sum(-1)
    torch.testing.assert_close(ours, by_hand)
    assert (ours > 0).all()


def test_gaussian_sampling_statistics_and_gradients() -> None:
    mean = torch.tensor([[1.0, -2.0]]).expand(40_000, 2)
    log_std = torch.tensor([0.0, math.log(0.5)], requires_grad=True)
    dist = DiagGaussian(mean, log_std)
    samples = dist.sample(gen(9))
    assert not samples.requires_grad
    assert torch.equal(samples, dist.sample(gen(9)))
    torch.testing.assert_close(samples.mean(0), torch.tensor([1.0, -2.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.tensor([1.0, 0.5]), atol=0.02, rtol=0)
    dist.rsample(gen(9)).sum().backward()
    assert log_std.grad is not None and log_std.grad.abs().sum() > 0


def test_squashed_gaussian_matches_torch_tanh_transform() -> None:
    mean, log_std = randn(6, 2, seed=10), randn(2, seed=11) * 0.3
    ours = DiagGaussian(mean, log_std, squash=True)
    base = td.Normal(mean, log_std.exp().expand_as(mean))
    theirs = td.Independent(td.TransformedDistribution(base, [td.TanhTransform()]), 1)
    actions = ours.sample(gen(12))
    assert ((actions > -1) & (actions < 1)).all()
    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    assert torch.equal(ours.mode(), torch.tanh(mean))
    with pytest.raises(ValueError, match="tanh squashing"):
        ours.entropy()
    with pytest.raises(ValueError, match="tanh squashing"):
        ours.kl(DiagGaussian(mean, log_std))


def test_kl_refuses_another_kind() -> None:
    with pytest.raises(ValueError, match="expected a Categorical, got DiagGaussian"):
        Categorical(torch.zeros(2, 3)).kl(DiagGaussian(torch.zeros(2, 3), torch.zeros(3)))
