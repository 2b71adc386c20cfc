"""The conv torso through the central learner: an IMPALA actor's uint8 image unrolls cross
the real wire (the worker's ``ExperienceLink`` PUSH, the learner daemon's PULL and
``wire.decode``) into serial mode's learner, which recomputes the actor's log-probabilities
exactly from the images that arrived, pushes a gradient, and moves the weights.

The images come from ``Squares``, a tiny deterministic world written here: serial mode
steps it with the clients' own code (``VectorRunner``), as tests/test_algorithm_impala.py
steps CartPole.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
import zmq
from gymnasium import spaces

from relaax_zmq.algorithms.common.layers import ConvTorso
from relaax_zmq.algorithms.impala.agent import TIME_MAJOR
from relaax_zmq.config import AppConfig, parse_config
from relaax_zmq.core_learner import ExperienceBatch
from relaax_zmq.learner import wire
from relaax_zmq.learner.sink import ExperienceLink
from relaax_zmq.runtime.sockets import open_socket, socket_map
from relaax_zmq.serial.runner import SerialRunner

#: (C, H, W): the Nature convolutions' smallest image is 36 x 36
SHAPE = (2, 36, 36)
SIDE = 6  # the square's side in pixels
SESSIONS, UNROLL = 4, 3  # one batch of 4 unrolls of 3 steps every 12 environment steps


class Squares(gymnasium.Env):
    """A bright square that the actions move along the diagonal (0: back, 1: stay,
    2: forward) on channel 0, and a clock (the step number x 9, mod 256) on channel 1.
    Reward 1 for moving forward. No episode ends."""

    observation_space = spaces.Box(0, 255, SHAPE, np.uint8)
    action_space = spaces.Discrete(3)

    def __init__(self) -> None:
        self.position = self.clock = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position, self.clock = (seed or 0) % (SHAPE[1] - SIDE), 0
        return self._image(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = (self.position + int(action) - 1) % (SHAPE[1] - SIDE)
        self.clock += 1
        return self._image(), float(int(action) == 2), False, False, {}

    def _image(self) -> np.ndarray:
        image = np.zeros(SHAPE, np.uint8)
        p = self.position
        image[0, p : p + SIDE, p : p + SIDE] = 255
        image[1] = self.clock * 9 % 256
        return image


def app() -> AppConfig:
    config = {
        "input": {"shape": list(SHAPE), "dtype": "uint8"},
        "output": {"actions": 3},
        "hidden_sizes": [32],
        "batch_size": SESSIONS,
        "unroll_length": UNROLL,
    }
    return parse_config(
        {
            "version": 1,
            # the name only: the runner's make_env builds the environments
            "environment": {"name": "Squares", "clients": SESSIONS, "seed": 1},
            "algorithm": {"name": "impala", "config": config},
            "parameter_servers": {"update": "async"},
        }
    )


def ratios(learner: Any, batch: ExperienceBatch, alter=lambda obs: obs) -> np.ndarray:
    """exp(learner's log-prob - behaviour log-prob) of every step of ``batch``, (T, N), on
    the learner's current weights, with the observations passed through ``alter``."""
    t = {k: torch.as_tensor(v).transpose(0, 1) for k, v in batch.fields.items() if k in TIME_MAJOR}
    with torch.no_grad():
        output = learner.model.unroll(alter(t["obs"]))
        log_probs = learner.model.distribution(output.head[:-1]).log_prob(t["action"])
    return torch.exp(log_probs - t["behaviour_log_prob"]).numpy()


def test_image_unrolls_cross_the_wire_and_the_learner_recomputes_the_actor_s_log_probs() -> None:
    config = app()
    runner = SerialRunner(config, make_env=Squares)
    assert runner.learner is not None
    serial, learner = runner.learner, runner.learner.learner
    assert isinstance(learner.model.torso, ConvTorso) and not learner.model.torso.channels_last

    # the worker's real link to learner 0, and the learner daemon's own socket and decoder
    context = zmq.Context()
    spec = socket_map(config, inproc=True)["learner[0].unrolls"]
    pull = open_socket(context, spec)
    link = ExperienceLink(config, "learner", "actor-0", context, inproc=True)
    arrived: list[wire.TensorMessage] = []
    learn_in_place = serial.send

    def through_the_wire(fields, *, version: int, steps: int, episodes: int) -> bool:
        assert link.send(fields, version=version, steps=steps, episodes=episodes)
        assert pull.poll(5000), "the unroll never reached the learner's socket"
        message = wire.decode(pull.recv_multipart(copy=False), spec.max_message_bytes)
        arrived.append(message)
        return learn_in_place(
            message.fields, version=message.version, steps=message.steps, episodes=message.episodes
        )

    serial.send = through_the_wire

    on_policy, inverted, batches, moved = [], [], [], []
    learn = learner.learn

    def checked(batch: ExperienceBatch) -> None:
        learner.fresh_weights()
        batches.append({k: (v.dtype, v.shape) for k, v in batch.fields.items()})
        on_policy.append(ratios(learner, batch))
        inverted.append(ratios(learner, batch, lambda obs: 255 - obs))  # the negative control
        before, pushes = runner.weights()[0], learner.figures["pushes"]
        learn(batch)
        assert learner.figures["pushes"] == pushes + 1
        moved.append(float(np.abs(runner.weights()[0] - before).max()))

    learner.learn = checked
    try:
        runner.run(max_steps=2 * SESSIONS * UNROLL)
    finally:
        link.close()
        pull.close(0)
        context.term()

    # every unroll crossed the wire as uint8 images, (1, T+1, C, H, W), and was batched so
    assert len(arrived) == 2 * SESSIONS
    for message in arrived:
        assert message.kind == "unrolls" and message.source == "actor-0"
        obs = message.fields["obs"]
        assert obs.dtype == np.uint8 and obs.shape == (1, UNROLL + 1, *SHAPE)
        assert obs.max() == 255 and len(np.unique(obs[0, :, 0], axis=0)) > 1  # squares move
    assert len(batches) == 2
    for fields in batches:
        assert fields["obs"] == (np.dtype(np.uint8), (SESSIONS, UNROLL + 1, *SHAPE))
        assert fields["action"][1] == (SESSIONS, UNROLL)

    # on-policy each batch is learned on the weights that acted: every ratio is 1
    for rho in on_policy:
        assert rho.shape == (UNROLL, SESSIONS)
        assert np.abs(rho - 1.0).max() < 1e-6, rho
    # the learner reads the images: inverted ones move the ratios
    for rho in inverted:
        assert np.abs(rho - 1.0).max() > 1e-4, rho
    # a gradient went to the shards each time, and the weights changed
    assert len(moved) == 2 and min(moved) > 0.0, moved
