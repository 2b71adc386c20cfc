"""The two sides of ``impala`` and ``appo``.

Actors (``ImpalaActor``, one per worker) act with the shards' newest weights and ship
unrolls. The learner (``ImpalaLearner``) stacks ``batch_size`` unrolls time-major, runs
the model over all T+1 observations at once, computes V-trace targets and advantages
(``algorithms.common.vtrace``) and pushes the gradient of the IMPALA loss, or of PPO's
clipped surrogate on V-trace advantages for ``appo`` (``epochs`` passes over each batch,
each in ``minibatches`` steps on random shares of its unrolls). With ``replay_ratio``,
the learner also steps on batches drawn from its last ``replay_capacity`` unrolls
(``algorithms.common.unroll_replay``), IMPALA's experience replay.
"""

from __future__ import annotations

import zlib

import torch

from relaax_zmq.core import AgentContext, names
from relaax_zmq.core_learner import ExperienceBatch, LearnerContext

from ..common.actor import UnrollActor
from ..common.learner import TorchLearner
from ..common.networks import ActorCritic, actor_critic
from ..common.normalizer import RewardScaler
from ..common.unroll_replay import UnrollReplay, select_unrolls
from ..common.vtrace import appo_loss, impala_loss, vtrace
from .config import APPOConfig, ImpalaConfig

#: The unroll fields with a time axis (``algorithms.common.unrolls``).
TIME_MAJOR = frozenset({"obs", "action", "behaviour_log_prob", "reward", "done"})


def build_model(config: ImpalaConfig) -> ActorCritic:
    """Policy and value heads (separate torsos unless ``shared_torso`` or an LSTM)."""
    return actor_critic(config)


class ImpalaActor(UnrollActor):
    """The worker side of impala and appo: act and ship unrolls."""

    def __init__(self, context: AgentContext, config: ImpalaConfig) -> None:
        name = "appo" if isinstance(config, APPOConfig) else "impala"
        scaler = RewardScaler(config.gamma) if config.normalize_rewards else None
        super().__init__(context, config, build_model(config), name=name, reward_scaler=scaler)


class ImpalaLearner(TorchLearner):
    """The learner side: V-trace actor-critic (impala) or clipped surrogate (appo)."""

    def __init__(self, context: LearnerContext, config: ImpalaConfig) -> None:
        self.appo = isinstance(config, APPOConfig)
        name = "appo" if self.appo else "impala"
        super().__init__(context, config, build_model(config), name=name)
        seed = zlib.crc32(f"{context.seed}/{name}/minibatches".encode())
        self.generator = torch.Generator().manual_seed(seed)
        self.replay = (
            UnrollReplay(config.replay_capacity, TIME_MAJOR, self.generator)
            if config.replay_ratio > 0
            else None
        )
        self.replay_credit = 0.0  # replay_ratio accrues per fresh batch; each 1 is a batch
        self.figures["replayed_batches"] = 0

    def learn(self, batch: ExperienceBatch) -> None:
        """Steps on the fresh ``batch``, then on the batches its ``replay_ratio`` earns."""
        tensors = {  # time-major: (T+1, N, ...) and (T, N, ...); an LSTM's start state (N, H)
            k: torch.as_tensor(v, device=self.device).transpose(0, 1) if k in TIME_MAJOR
            else torch.as_tensor(v, device=self.device)
            for k, v in batch.fields.items()
        }  # fmt: skip
        self._update(tensors, len(batch), batch.steps, batch.episodes)
        if self.replay is None:
            return None
        self.replay.add(tensors)
        self.replay_credit += self.config.replay_ratio
        while self.replay_credit >= 1.0:
            self.replay_credit -= 1.0
            count = min(self.batch_size, len(self.replay))
            self._update(self.replay.sample(count), count, 0, 0)
            self.figures["replayed_batches"] += 1
        return None

    def _update(
        self, tensors: dict[str, torch.Tensor], count: int, steps: int, episodes: int
    ) -> None:
        """The gradient steps of one batch of ``count`` unrolls (appo: epochs x minibatches);
        its ``steps`` and ``episodes`` are counted with the first push."""
        config = self.config
        epochs, minibatches = (config.epochs, config.minibatches) if self.appo else (1, 1)
        for _ in range(epochs):
            order = torch.randperm(count, generator=self.generator) if minibatches > 1 else None
            for part in range(minibatches):
                rows = None if order is None else order[part::minibatches].to(self.device)
                self.fresh_weights()
                share = tensors if rows is None else select_unrolls(tensors, rows, TIME_MAJOR)
                loss, figures = self._loss(share)
                figures[names.GRADIENT_NORM] = self.push(loss, steps, episodes)
                steps = episodes = 0
                self.record(figures)

    def _loss(self, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.config
        discounts = config.gamma * (1.0 - t["done"])
        if self.model.core is None:
            output = self.model.unroll(t["obs"])
        else:  # from the state the actor started the unroll with, reset after each done
            dones = torch.cat([t["done"], torch.zeros_like(t["done"][:1])])
            output = self.model.unroll(t["obs"], (t["h"], t["c"]), dones)
        values = output.value  # (T+1, N)
        distribution = self.model.distribution(output.head[:-1])
        target_log_probs = distribution.log_prob(t["action"])
        entropy = distribution.entropy()
        returns = vtrace(
            t["behaviour_log_prob"],
            target_log_probs.detach(),
            t["reward"],
            discounts,
            values[:-1].detach(),
            values[-1].detach(),
            clip_rho=config.clip_rho,
            clip_c=config.clip_c,
            clip_pg_rho=config.clip_pg_rho,
            lambda_=config.vtrace_lambda,
        )
        if not self.appo:
            return impala_loss(
                target_log_probs,
                entropy,
                values[:-1],
                returns,
                value_coef=config.value_coef,
                entropy_coef=config.entropy_coef,
                normalize_advantages=config.normalize_advantages,
            )
        return appo_loss(
            target_log_probs,
            t["behaviour_log_prob"],
            entropy,
            values[:-1],
            returns,
            clip=config.clip,
            value_coef=config.value_coef,
            entropy_coef=config.entropy_coef,
            normalize_advantages=config.normalize_advantages,
        )
