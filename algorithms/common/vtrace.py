"""V-trace off-policy targets and the IMPALA / APPO losses built on them.

V-trace (Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with Importance
Weighted Actor-Learner Architectures", eq. 1) corrects n-step value targets for the lag
between the behaviour policy ``mu`` that acted and the target policy ``pi`` being learned::

    v_s = V(x_s) + sum_{t=s}^{T-1} (prod_{i=s}^{t-1} discount_i c_i) delta_t
    delta_t = rho_t (r_t + discount_t V(x_{t+1}) - V(x_t))
    rho_t = min(clip_rho, pi/mu),  c_i = lambda_ * min(clip_c, pi/mu)

computed here by the equivalent backward recursion
``v_s - V(x_s) = delta_s + discount_s c_s (v_{s+1} - V(x_{s+1}))``.

Tensors are time-major ``(T, B)``; ``discounts`` is ``gamma * (1 - done)`` (a 0 ends an episode
inside the unroll). Targets are detached: the losses differentiate only log pi, V and entropy.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from relaax_zmq.algorithms.common import losses


class VTraceReturns(NamedTuple):
    """V-trace targets, all ``(T, B)`` and detached."""

    vs: torch.Tensor  #: value targets v_s
    pg_advantages: torch.Tensor  #: min(clip_pg_rho, rho_s) (r_s + discount_s v_{s+1} - V(x_s))
    rhos: torch.Tensor  #: unclipped importance ratios pi/mu (for reporting)


def _check_shapes(expected: tuple[int, ...], what: str, **tensors: torch.Tensor) -> None:
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{name}: expected shape {expected} ({what}), got {tuple(tensor.shape)}"
            )


def _clipped(ratios: torch.Tensor, clip: float | None) -> torch.Tensor:
    return ratios if clip is None else ratios.clamp(max=clip)


def vtrace(
    behaviour_log_probs: torch.Tensor,
    target_log_probs: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    *,
    clip_rho: float | None = 1.0,
    clip_c: float | None = 1.0,
    clip_pg_rho: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets for one unroll of ``T`` steps in ``B`` streams (no gradients).

    Per-step inputs are ``(T, B)``: log mu(a_s|x_s), log pi(a_s|x_s), r_s, discount_s and
    V(x_s); ``bootstrap_value`` is V(x_T), ``(B,)``. A clip of ``None`` leaves that ratio
    unclipped; ``lambda_`` in [0, 1] scales the trace coefficients ``c_s``.
    """
    shape = tuple(behaviour_log_probs.shape)
    if len(shape) != 2:
        raise ValueError(f"behaviour_log_probs: expected shape (T, B), got {shape}")
    what = "(T, B), that of behaviour_log_probs"
    _check_shapes(shape, what, target_log_probs=target_log_probs, rewards=rewards)
    _check_shapes(shape, what, discounts=discounts, values=values)
    _check_shapes(shape[1:], "(B,)", bootstrap_value=bootstrap_value)
    for name, clip in (("clip_rho", clip_rho), ("clip_c", clip_c), ("clip_pg_rho", clip_pg_rho)):
        if clip is not None and clip <= 0:
            raise ValueError(f"{name}: expected a positive value or None, got {clip}")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_: expected a value in [0, 1], got {lambda_}")

    with torch.no_grad():
        rhos = (target_log_probs - behaviour_log_probs).exp()
        values_next = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
        deltas = _clipped(rhos, clip_rho) * (rewards + discounts * values_next - values)
        decays = discounts * lambda_ * _clipped(rhos, clip_c)
        corrections = torch.empty_like(deltas)  # v_s - V(x_s)
        correction = deltas.new_zeros(shape[1:])
        for s in range(shape[0] - 1, -1, -1):
            correction = deltas[s] + decays[s] * correction
            corrections[s] = correction
        vs = values + corrections
        vs_next = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], dim=0)
        pg_advantages = _clipped(rhos, clip_pg_rho) * (rewards + discounts * vs_next - values)
    return VTraceReturns(vs, pg_advantages, rhos)


def _total(
    policy: torch.Tensor,
    values: torch.Tensor,
    entropy: torch.Tensor,
    returns: VTraceReturns,
    value_coef: float,
    entropy_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    critic = losses.value_loss(values, returns.vs)
    total = policy + value_coef * critic + losses.entropy_bonus(entropy, entropy_coef)
    return total, {
        "policy_loss": float(policy.detach()),
        "value_loss": float(critic.detach()),
        "entropy": float(entropy.detach().mean()),
        "mean_rho": float(returns.rhos.mean()),
    }


def impala_loss(
    target_log_probs: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    returns: VTraceReturns,
    *,
    value_coef: float,
    entropy_coef: float,
    normalize_advantages: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """IMPALA loss ``policy + value_coef * value - entropy_coef * mean(entropy)``.

    ``policy = -mean(log pi * pg_advantages)`` (the advantages standardised over the whole
    batch when ``normalize_advantages``), ``value = 0.5 * mean((vs - values)^2)``.
    Returns the loss and the figures ``policy_loss``, ``value_loss``, ``entropy``, ``mean_rho``.
    """
    what, shape = "that of returns.vs", tuple(returns.vs.shape)
    _check_shapes(shape, what, target_log_probs=target_log_probs, entropy=entropy, values=values)
    advantages = returns.pg_advantages
    if normalize_advantages:
        advantages = losses.normalize_advantages(advantages, eps=1e-8)
    policy = losses.policy_gradient_loss(target_log_probs, advantages)
    return _total(policy, values, entropy, returns, value_coef, entropy_coef)


def appo_loss(
    target_log_probs: torch.Tensor,
    behaviour_log_probs: torch.Tensor,
    entropy: torch.Tensor,
    values: torch.Tensor,
    returns: VTraceReturns,
    *,
    clip: float,
    value_coef: float,
    entropy_coef: float,
    normalize_advantages: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """APPO loss: the PPO clipped surrogate on V-trace advantages, plus value and entropy.

    The ratio is ``exp(log pi - log mu)``; advantages are ``pg_advantages``, standardised
    over the whole batch (eps 1e-8) when ``normalize_advantages``. Figures as
    ``impala_loss`` plus ``clip_fraction`` (the share of ``|ratio - 1| > clip``).
    """
    what, shape = "that of returns.vs", tuple(returns.vs.shape)
    _check_shapes(shape, what, target_log_probs=target_log_probs, entropy=entropy, values=values)
    _check_shapes(shape, what, behaviour_log_probs=behaviour_log_probs)
    advantages = returns.pg_advantages
    if normalize_advantages:
        advantages = losses.normalize_advantages(advantages, eps=1e-8)
    surrogate = losses.ppo_clip_loss(target_log_probs, behaviour_log_probs, advantages, clip)
    total, figures = _total(surrogate.loss, values, entropy, returns, value_coef, entropy_coef)
    figures["clip_fraction"] = float(surrogate.clip_fraction)
    return total, figures
