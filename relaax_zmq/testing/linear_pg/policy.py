"""The linear softmax policy and its REINFORCE gradient, as pure numpy functions."""

from __future__ import annotations

import numpy as np


def unpack(params: np.ndarray, state_size: int, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """``W`` (state_size, actions) and ``b`` (actions,) as views of the flat vector."""
    split = state_size * actions
    return params[:split].reshape(state_size, actions), params[split:]


def probabilities(params: np.ndarray, states: np.ndarray, actions: int) -> np.ndarray:
    """(B, actions) softmax of ``states @ W + b``."""
    w, b = unpack(params, states.shape[1], actions)
    logits = states @ w + b
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def discounted_returns(rewards: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}``, restarting after each step with ``ends[t]``.

    One session's transitions in order; the return after the last one is 0.
    """
    returns = np.zeros(len(rewards), np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if ends[t]:
            running = 0.0
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def advantages(returns: np.ndarray) -> np.ndarray:
    """Returns minus their mean, scaled to unit deviation (when they vary)."""
    centred = returns - returns.mean()
    std = centred.std()
    return centred / std if std > 1e-8 else centred


def reinforce_gradient(
    params: np.ndarray, states: np.ndarray, actions: np.ndarray, advantage: np.ndarray, n: int
) -> np.ndarray:
    """Gradient of ``-mean_t advantage_t * log pi(a_t | x_t)`` w.r.t. the flat vector.

    ``n`` is the number of actions; the result is float32 like the parameters.
    """
    probs = probabilities(params.astype(np.float64), states.astype(np.float64), n)
    dlogits = probs
    dlogits[np.arange(len(actions)), actions] -= 1.0
    dlogits *= advantage[:, None] / len(actions)
    dw = states.astype(np.float64).T @ dlogits
    db = dlogits.sum(axis=0)
    return np.concatenate([dw.ravel(), db]).astype(np.float32)
