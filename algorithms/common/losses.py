"""Losses and targets: policy gradient, A3C, PPO, DQN (double, prioritized), DDPG/TD3.

All torch. Batch tensors are 1-D ``(N,)`` unless stated; losses are means over the batch.
Targets and advantages are treated as constants (detached) so gradients flow only through
the quantities being fitted.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class A3CLoss(NamedTuple):
    """The A3C objective and its parts (``policy_loss``, ``value_loss`` carry gradients)."""

    total: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor


class PPOPolicyLoss(NamedTuple):
    """The clipped surrogate loss and detached diagnostics."""

    loss: torch.Tensor
    approx_kl: torch.Tensor
    clip_fraction: torch.Tensor


class TDLoss(NamedTuple):
    """A (weighted) TD loss and the detached TD errors ``target - q`` for priorities."""

    loss: torch.Tensor
    td_errors: torch.Tensor


def _same_shape(reference: str, tensor: torch.Tensor, **others: torch.Tensor) -> None:
    for name, other in others.items():
        if other.shape != tensor.shape:
            raise ValueError(
                f"{name}: expected shape {tuple(tensor.shape)} (that of {reference}), "
                f"got {tuple(other.shape)}"
            )


def _not_done(dones: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return 1.0 - dones.to(like.dtype)


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(a - mean) / (std + eps)`` over all elements (population std); detached."""
    advantages = advantages.detach()
    return (advantages - advantages.mean()) / (advantages.std(correction=0) + eps)


def policy_gradient_loss(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """REINFORCE / actor loss ``-mean(log_prob * advantage)``; advantages are constants."""
    _same_shape("log_probs", log_probs, advantages=advantages)
    return -(log_probs * advantages.detach()).mean()


def entropy_bonus(entropy: torch.Tensor, coef: float) -> torch.Tensor:
    """The loss term ``-coef * mean(entropy)``: minimising it raises the entropy."""
    return -coef * entropy.mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean((returns - values)^2)``; returns are constants."""
    _same_shape("values", values, returns=returns)
    return 0.5 * (returns.detach() - values).pow(2).mean()


def a3c_loss(
    log_probs: torch.Tensor,
    values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    value_coef: float = 0.5,
    entropy_coef: float = 0.01,
) -> A3CLoss:
    """Actor-critic loss ``policy + value_coef * value - entropy_coef * mean(entropy)``.

    All (N,). The advantage is ``returns - values`` (detached); ``value_loss`` is
    ``0.5 * mean((returns - values)^2)``; ``entropy`` in the result is the mean entropy.
    """
    _same_shape("log_probs", log_probs, values=values, returns=returns, entropy=entropy)
    policy = policy_gradient_loss(log_probs, returns - values)
    critic = value_loss(values, returns)
    total = policy + value_coef * critic + entropy_bonus(entropy, entropy_coef)
    return A3CLoss(total, policy, critic, entropy.mean())


def ppo_clip_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip: float
) -> PPOPolicyLoss:
    """PPO clipped surrogate ``-mean(min(rho A, clip(rho, 1 - clip, 1 + clip) A))``.

    ``rho = exp(log_probs - old_log_probs)``; all (N,); old log-probs and advantages are
    constants. ``approx_kl`` is the estimator ``mean((rho - 1) - log rho)`` of
    KL(old || new) (never negative); ``clip_fraction`` the share of ``|rho - 1| > clip``.
    """
    _same_shape("log_probs", log_probs, old_log_probs=old_log_probs, advantages=advantages)
    if clip <= 0:
        raise ValueError(f"clip: expected a positive value, got {clip}")
    advantages = advantages.detach()
    log_ratio = log_probs - old_log_probs.detach()
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
    loss = -torch.minimum(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip).to(ratio.dtype).mean()
    return PPOPolicyLoss(loss, approx_kl, clip_fraction)


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_value: float | None = None,
) -> torch.Tensor:
    """PPO value loss ``0.5 * mean((values - returns)^2)``, clipped as in PPO2 when asked.

    With ``clip_value``: ``0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, +-c) - R)^2))``.
    All (N,); old values and returns are constants.
    """
    _same_shape("values", values, old_values=old_values, returns=returns)
    if clip_value is None:
        return value_loss(values, returns)
    if clip_value <= 0:
        raise ValueError(f"clip_value: expected a positive value or None, got {clip_value}")
    returns = returns.detach()
    old_values = old_values.detach()
    clipped = old_values + (values - old_values).clamp(-clip_value, clip_value)
    return 0.5 * torch.maximum((values - returns).pow(2), (clipped - returns).pow(2)).mean()


def dqn_td_targets(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    next_q_online: torch.Tensor | None,
    next_q_target: torch.Tensor,
    gamma: float | torch.Tensor,
    double: bool = True,
) -> torch.Tensor:
    """Q-learning targets ``r + gamma * (1 - done) * Q_target(s', a*)``, detached.

    rewards, dones: (N,); next_q_*: (N, actions). ``a*`` is the argmax of the online net
    when ``double`` (double DQN), else of the target net (plain max). For n-step
    transitions pass the n-step discounted reward and ``gamma ** n`` (scalar or (N,)).
    """
    if next_q_target.dim() != 2 or next_q_target.shape[0] != rewards.shape[0]:
        raise ValueError(
            f"next_q_target: expected shape ({rewards.shape[0]}, actions), "
            f"got {tuple(next_q_target.shape)}"
        )
    _same_shape("rewards", rewards, dones=dones)
    with torch.no_grad():
        if double:
            if next_q_online is None or next_q_online.shape != next_q_target.shape:
                got = None if next_q_online is None else tuple(next_q_online.shape)
                raise ValueError(
                    f"next_q_online: expected shape {tuple(next_q_target.shape)} for double DQN, got {got}"
                )
            best = next_q_online.argmax(dim=1, keepdim=True)
            next_q = next_q_target.gather(1, best).squeeze(1)
        else:
            next_q = next_q_target.max(dim=1).values
        return rewards + gamma * _not_done(dones, next_q) * next_q


def huber(x: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Elementwise Huber: ``0.5 x^2`` for ``|x| <= delta``, ``delta (|x| - 0.5 delta)`` beyond."""
    absolute = x.abs()
    quadratic = absolute.clamp(max=delta)
    return 0.5 * quadratic.pow(2) + delta * (absolute - quadratic)


def td_loss(
    q_values: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    delta: float = 1.0,
) -> TDLoss:
    """``mean(w * huber(target - q))`` (importance weights for prioritized replay).

    q_values (of the taken actions), targets, weights: (N,); weights default to 1.
    ``td_errors`` (detached ``target - q``) feed the priority update.
    """
    _same_shape("q_values", q_values, targets=targets)
    errors = targets.detach() - q_values
    per_sample = huber(errors, delta)
    if weights is not None:
        _same_shape("q_values", q_values, weights=weights)
        per_sample = weights.detach() * per_sample
    return TDLoss(per_sample.mean(), errors.detach())


def ddpg_critic_targets(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    q1_next: torch.Tensor,
    q2_next: torch.Tensor | None,
    gamma: float | torch.Tensor,
) -> torch.Tensor:
    """Critic targets ``r + gamma * (1 - done) * Q'(s', mu'(s'))``, detached; all (N,).

    With ``q2_next`` (TD3) the bootstrap is the elementwise ``min(q1_next, q2_next)``.
    """
    _same_shape("rewards", rewards, dones=dones, q1_next=q1_next)
    with torch.no_grad():
        next_q = q1_next
        if q2_next is not None:
            _same_shape("q1_next", q1_next, q2_next=q2_next)
            next_q = torch.minimum(q1_next, q2_next)
        return rewards + gamma * _not_done(dones, next_q) * next_q


def target_policy_smoothing(
    actions: torch.Tensor,
    noise_std: float,
    noise_clip: float,
    low: float | torch.Tensor,
    high: float | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TD3 target actions: ``clip(a + clip(N(0, std), +-noise_clip), low, high)``.

    actions: (N, action_dim); low/high: scalars or (action_dim,). Detached.
    """
    if noise_std < 0 or noise_clip < 0:
        raise ValueError(
            f"noise_std, noise_clip: expected non-negative values, got {noise_std}, {noise_clip}"
        )
    with torch.no_grad():
        noise = torch.randn(
            actions.shape, generator=generator, dtype=actions.dtype, device=actions.device
        )
        noise = (noise * noise_std).clamp(-noise_clip, noise_clip)
        low_t = torch.as_tensor(low, dtype=actions.dtype, device=actions.device)
        high_t = torch.as_tensor(high, dtype=actions.dtype, device=actions.device)
        return torch.clamp(actions + noise, low_t, high_t)


def polyak(target: torch.Tensor, online: torch.Tensor, tau: float) -> torch.Tensor:
    """New target parameters ``(1 - tau) * target + tau * online`` (flat tensors)."""
    _same_shape("target", target, online=online)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau: expected a value in [0, 1], got {tau}")
    return torch.lerp(target, online, tau)
