"""The built-in metric names: one constant each, the kind that usually sends it, what it means.

A name is a bare word (``episode_reward``); the collector files it under the sender's kind
(``client/episode_reward``, see docs/metrics.md). Apps may send any other name too.
"""

from __future__ import annotations

from typing import NamedTuple


class MetricInfo(NamedTuple):
    """What a built-in metric is: scalar or histogram, its usual sender kind, its meaning."""

    histogram: bool
    kind: str
    doc: str


# -- episodes (clients) -------------------------------------------------------------------------
EPISODE_REWARD = "episode_reward"
EPISODE_LENGTH = "episode_length"
ENV_STEPS = "env_steps"
EPISODES = "episodes"
ACTION_LATENCY_CLIENT_MS = "action_latency_client_ms"
# -- throughput and serving (workers) -----------------------------------------------------------
STEPS_PER_SECOND = "steps_per_second"
ACTION_LATENCY_SERVER_MS = "action_latency_server_ms"
SESSIONS = "sessions"
BATCH_SIZE = "batch_size"
# -- learning (workers) -------------------------------------------------------------------------
LOSS = "loss"
POLICY_LOSS = "policy_loss"
VALUE_LOSS = "value_loss"
ENTROPY = "entropy"
KL_DIVERGENCE = "kl_divergence"
LEARNING_RATE = "learning_rate"
EPSILON = "epsilon"
Q_VALUE = "q_value"
GRADIENT_NORM = "gradient_norm"
ACTIONS = "actions"
# -- parameter servers --------------------------------------------------------------------------
WEIGHT_NORM = "weight_norm"
STALENESS = "staleness"
UPDATES_PER_SECOND = "updates_per_second"
GLOBAL_STEP = "global_step"
CHECKPOINT_FAILURES = "checkpoint_failures"

#: Every built-in name and what it is (docs/metrics.md shows the same table).
BUILTIN: dict[str, MetricInfo] = {
    EPISODE_REWARD: MetricInfo(False, "client", "sum of the rewards of a finished episode"),
    EPISODE_LENGTH: MetricInfo(False, "client", "steps of a finished episode"),
    ENV_STEPS: MetricInfo(
        False,
        "client",
        "environment steps since the sender's previous env_steps, sent with episode_reward "
        "(their running sum is the run's environment steps: the x axis of learning curves)",
    ),
    EPISODES: MetricInfo(
        False,
        "client",
        "episodes that ended since the sender's previous report, sent with episode_reward "
        "(the number of episodes that value is the mean of)",
    ),
    ACTION_LATENCY_CLIENT_MS: MetricInfo(
        False, "client", "update sent to action received, milliseconds"
    ),
    STEPS_PER_SECOND: MetricInfo(False, "worker", "environment steps served per second"),
    ACTION_LATENCY_SERVER_MS: MetricInfo(
        False, "worker", "request received to action sent, milliseconds"
    ),
    SESSIONS: MetricInfo(False, "worker", "sessions hosted"),
    BATCH_SIZE: MetricInfo(False, "worker", "mean rows per forward pass"),
    LOSS: MetricInfo(False, "worker", "total loss of the last update"),
    POLICY_LOSS: MetricInfo(False, "worker", "policy (actor) loss"),
    VALUE_LOSS: MetricInfo(False, "worker", "value (critic) loss"),
    ENTROPY: MetricInfo(False, "worker", "mean policy entropy"),
    KL_DIVERGENCE: MetricInfo(False, "worker", "KL(old policy || new policy) of an update"),
    LEARNING_RATE: MetricInfo(False, "worker", "current learning rate"),
    EPSILON: MetricInfo(False, "worker", "exploration rate (epsilon-greedy, noise scale)"),
    Q_VALUE: MetricInfo(False, "worker", "mean predicted Q value of a batch"),
    GRADIENT_NORM: MetricInfo(False, "worker", "global L2 norm of the gradients sent"),
    ACTIONS: MetricInfo(True, "worker", "actions chosen (histogram)"),
    WEIGHT_NORM: MetricInfo(False, "ps", "global L2 norm of the shard's weights"),
    STALENESS: MetricInfo(
        False, "ps", "weight versions between a gradient's and the ones it is applied to"
    ),
    UPDATES_PER_SECOND: MetricInfo(False, "ps", "gradients applied per second"),
    GLOBAL_STEP: MetricInfo(
        False, "ps", "the shard's global step (environment steps of the gradients it accepted)"
    ),
    CHECKPOINT_FAILURES: MetricInfo(
        False, "ps", "checkpoint saves a location refused since the shard started (0: all saved)"
    ),
}

#: Built-in scalar names and histogram names.
SCALARS: tuple[str, ...] = tuple(n for n, i in BUILTIN.items() if not i.histogram)
HISTOGRAMS: tuple[str, ...] = tuple(n for n, i in BUILTIN.items() if i.histogram)
