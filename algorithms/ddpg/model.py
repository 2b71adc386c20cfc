"""The one network of ``ddpg`` the shards serve: the actor, then the critic(s).

The flat vector is ``DDPGModel.parameters()`` in module order: every actor parameter
first, then the critic's (both Q networks with ``twin``). ``param_groups`` gives the
actor's range its own learning-rate scale on the shards.
"""

from __future__ import annotations

import torch
from torch import nn

from relaax_zmq.core import ParamGroup

from ..common.networks import Critic, DeterministicActor
from .config import DDPGConfig


class DDPGModel(nn.Module):
    """A deterministic actor (tanh scaled to the bounds) and a (twin) Q critic."""

    def __init__(self, config: DDPGConfig) -> None:
        super().__init__()
        observation, action = config.input.spec(), config.output.spec()
        sizes, activation = config.hidden_sizes, config.activation
        self.actor = DeterministicActor(observation, action, sizes, activation)
        self.critic = Critic(observation, action, sizes, activation, twin=config.twin)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(B, *obs) -> (B, d) the actor's actions."""
        return self.actor(states)


def build_model(config: DDPGConfig) -> DDPGModel:
    return DDPGModel(config)


def actor_range(model: DDPGModel) -> tuple[int, int]:
    """``(offset, count)`` of the actor's parameters in the model's flat vector.

    Raises ValueError when they are not one contiguous range (module order changed).
    """
    actor = {id(p) for p in model.actor.parameters()}
    offsets = []
    offset = 0
    for p in model.parameters():
        if id(p) in actor:
            offsets.append((offset, p.numel()))
        offset += p.numel()
    start, count = offsets[0][0], sum(n for _, n in offsets)
    if offsets[-1][0] + offsets[-1][1] - start != count:
        raise ValueError("ddpg: expected the actor's parameters contiguous in the flat vector")
    return start, count


def param_groups(config: DDPGConfig) -> tuple[ParamGroup, ...]:
    """The actor's range at ``actor_lr_scale`` times the optimizer's (critic's) rate."""
    offset, count = actor_range(build_model(config))
    return (ParamGroup(offset, count, config.actor_lr_scale),)
