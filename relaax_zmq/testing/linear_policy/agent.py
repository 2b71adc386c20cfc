"""The agent side of the linear test policy (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from relaax_zmq.core import Agent, AgentContext, StepBatch, option, parse_config


@dataclass(frozen=True, kw_only=True)
class LinearPolicyConfig:
    """``algorithm.config`` of the fixed linear policy."""

    actions: int = option(2, ge=1, doc="discrete actions (argmax of W @ state)")
    action_size: int | None = option(None, ge=1, doc="continuous: tanh(W @ state) of this size")
    seed: int = option(0, doc="seed of the weights")
    torch: bool = option(False, doc="run the forward pass with torch instead of numpy")


@dataclass
class LinearPolicyCounters:
    """What the linear policy agent counts (its ``stats`` show every field by name)."""

    steps: int = 0  # session steps acted on
    episodes: int = 0  # episodes ended (terminal or truncated steps, end_episodes)
    batches: int = 0  # act calls
    exploit_steps: int = 0  # steps of exploit sessions


class LinearPolicyAgent(Agent):
    """Acts with a fixed linear map of the flattened observation; counts what it sees."""

    def __init__(self, config: LinearPolicyConfig | Mapping[str, Any]) -> None:
        if not isinstance(config, LinearPolicyConfig):
            config = parse_config(LinearPolicyConfig, config, "linear_policy")
        self.discrete = config.action_size is None
        self.outputs = config.actions if config.action_size is None else config.action_size
        self.seed = config.seed
        self.use_torch = config.torch
        self.weights: np.ndarray | None = None
        self.sessions: dict[int, bool] = {}
        self.counters = LinearPolicyCounters()

    def open_sessions(self, session_ids: np.ndarray, *, exploit: bool) -> None:
        for sid in session_ids.tolist():
            self.sessions[sid] = exploit

    def close_sessions(self, session_ids: np.ndarray) -> None:
        for sid in session_ids.tolist():
            self.sessions.pop(sid, None)

    def end_episodes(self, session_ids: np.ndarray) -> None:
        self.counters.episodes += len(session_ids)

    def act(self, batch: StepBatch) -> np.ndarray:
        self.counters.batches += 1
        self.counters.steps += len(batch)
        self.counters.exploit_steps += int(batch.exploit.sum())
        self.counters.episodes += int((batch.terminal | batch.truncated).sum())
        if batch.states is None:
            return self._empty(len(batch))
        flat = np.asarray(batch.states, np.float32).reshape(len(batch), -1)
        logits = self._forward(flat)
        if self.discrete:
            return logits.argmax(axis=1).astype(np.int64)
        return np.tanh(logits).astype(np.float32)

    def stats(self) -> dict[str, float]:
        return {**asdict(self.counters), "sessions": len(self.sessions)}

    def _forward(self, flat: np.ndarray) -> np.ndarray:
        if self.weights is None:
            rng = np.random.default_rng(self.seed)
            self.weights = rng.standard_normal((flat.shape[1], self.outputs)).astype(np.float32)
        if flat.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"expected observations of {self.weights.shape[0]} values, got {flat.shape[1]}"
            )
        if self.use_torch:
            import torch

            with torch.no_grad():
                return (torch.from_numpy(flat) @ torch.from_numpy(self.weights)).numpy()
        return flat @ self.weights

    def _empty(self, n: int) -> np.ndarray:
        if self.discrete:
            return np.zeros(n, np.int64)
        return np.zeros((n, self.outputs), np.float32)


def linear_policy_agent(context: AgentContext, config: LinearPolicyConfig) -> LinearPolicyAgent:
    """The agent of ``config`` (the context adds nothing: no server, no learning)."""
    return LinearPolicyAgent(config)
