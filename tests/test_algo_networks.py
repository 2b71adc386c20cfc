"""Networks and space descriptions of the built-in algorithms (algorithms.common)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from gymnasium import spaces as gym_spaces

from relaax_zmq.algorithms.common.distributions import Categorical, DiagGaussian
from relaax_zmq.algorithms.common.flat import flat_parameters, initial_vector, load_flat
from relaax_zmq.algorithms.common.networks import (
    ActorCritic,
    ConvTorso,
    Critic,
    DeterministicActor,
    LSTMCore,
    MLPTorso,
    QNetwork,
    make_torso,
    mlp,
)
from relaax_zmq.algorithms.common.spaces import ActionSpec, ObservationSpec

VECTOR = ObservationSpec((4,))
IMAGE_HWC = ObservationSpec((36, 36, 2), "uint8")
DISCRETE = ActionSpec.discrete(3)
BOX = ActionSpec.continuous([-2.0, 0.0], [2.0, 1.0])


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def states(batch: int, spec: ObservationSpec = VECTOR, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if spec.dtype == "uint8":
        return torch.from_numpy(rng.integers(0, 256, (batch, *spec.shape), dtype=np.uint8))
    return torch.from_numpy(rng.normal(size=(batch, *spec.shape)).astype(np.float32))


# spaces


def test_observation_spec_sizes_and_checks() -> None:
    assert VECTOR.size == 4 and not VECTOR.is_image and VECTOR.dtype == "float32"
    assert IMAGE_HWC.is_image and IMAGE_HWC.size == 36 * 36 * 2
    assert not ObservationSpec((4, 4, 3), "float32").is_image
    assert ObservationSpec([3, 2], np.uint8).shape == (3, 2)
    VECTOR.check(np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected \(B, 4\) float32, got \(5, 3\) float32"):
        VECTOR.check(np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="got .* float64"):
        VECTOR.check(np.zeros((5, 4)))
    for shape in [(), (0,), (2.5,)]:
        with pytest.raises(ValueError, match="observation shape"):
            ObservationSpec(shape)
    with pytest.raises(ValueError, match="observation dtype"):
        ObservationSpec((2,), "U3")


def test_action_spec_discrete_and_continuous() -> None:
    assert DISCRETE.is_discrete and DISCRETE.size == 3 and DISCRETE.shape == ()
    assert not BOX.is_discrete and BOX.size == 2 and BOX.shape == (2,)
    assert BOX.low == (-2.0, 0.0) and BOX.high == (2.0, 1.0)
    assert ActionSpec.continuous(-1, 1, dim=3).high == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="expected an int >= 1, got 0"):
        ActionSpec.discrete(0)
    with pytest.raises(ValueError, match="finite low < high"):
        ActionSpec.continuous([1.0], [1.0])
    with pytest.raises(ValueError, match="got 2 and 3"):
        ActionSpec.continuous([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="expected n"):
        ActionSpec()


def test_specs_from_gymnasium_follow_envs_conversions() -> None:
    box = gym_spaces.Box(-1.0, 1.0, (3,), np.float32)
    image = gym_spaces.Box(0, 255, (84, 84, 3), np.uint8)
    assert ObservationSpec.from_gymnasium(box) == ObservationSpec((3,))
    assert ObservationSpec.from_gymnasium(image).is_image
    assert ObservationSpec.from_gymnasium(gym_spaces.Discrete(5)) == ObservationSpec((5,))
    nested = gym_spaces.Dict({"a": gym_spaces.Discrete(2), "b": box})
    assert ObservationSpec.from_gymnasium(nested) == ObservationSpec((5,))
    assert ActionSpec.from_gymnasium(gym_spaces.Discrete(4, start=1)) == ActionSpec.discrete(4)
    assert ActionSpec.from_gymnasium(box) == ActionSpec.continuous(-1.0, 1.0, dim=3)
    with pytest.raises(TypeError, match="expected Discrete or Box"):
        ActionSpec.from_gymnasium(gym_spaces.MultiBinary(3))


# building blocks


def test_mlp_shapes_and_orthogonal_init() -> None:
    net = mlp(4, [16, 8], 3, activation="relu", hidden_gain=2.0, out_gain=0.5)
    assert net(torch.zeros(5, 4)).shape == (5, 3)
    first, last = net[0], net[-1]
    assert isinstance(net[1], torch.nn.ReLU)
    # orthogonal: rows of a (16, 4) weight have orthonormal columns, scaled by the gain
    torch.testing.assert_close(first.weight.T @ first.weight, 4.0 * torch.eye(4))
    torch.testing.assert_close(last.weight @ last.weight.T, 0.25 * torch.eye(3))
    assert not first.bias.any() and not last.bias.any()
    assert mlp(4, [7], None)(torch.zeros(2, 4)).shape == (2, 7)
    with pytest.raises(ValueError, match="expected one of tanh, relu, got 'gelu'"):
        mlp(4, [8], 2, activation="gelu")  # type: ignore[arg-type]


def test_mlp_torso_flattens_observations() -> None:
    torso = make_torso(ObservationSpec((2, 3)), [8])
    assert isinstance(torso, MLPTorso) and torso.out_size == 8
    assert torso(torch.zeros(5, 2, 3)).shape == (5, 8)
    assert make_torso(VECTOR, []).out_size == 4


def test_conv_torso_layouts_agree() -> None:
    hwc = make_torso(IMAGE_HWC, [32], "relu")
    assert isinstance(hwc, ConvTorso) and hwc.channels_last and hwc.out_size == 32
    chw = ConvTorso((2, 36, 36), [32])
    assert not chw.channels_last
    load_flat(chw, flat_parameters(hwc))
    images = states(3, IMAGE_HWC)
    out = hwc(images)
    assert out.shape == (3, 32)
    torch.testing.assert_close(out, chw(images.permute(0, 3, 1, 2)))
    # uint8 pixels are scaled by 1/255 before the convolutions
    by_hand = hwc.dense(hwc.convs(images.permute(0, 3, 1, 2).float() / 255.0))
    torch.testing.assert_close(out, by_hand)
    nature = ConvTorso((4, 84, 84))
    assert nature.out_size == 512 and nature.dense[0].in_features == 64 * 7 * 7
    with pytest.raises(ValueError, match="at least 36x36"):
        ConvTorso((3, 20, 20))


def test_lstm_unroll_resets_like_steps() -> None:
    core = LSTMCore(5, 6)
    steps, batch = 7, 3
    x = torch.randn(steps, batch, 5)
    dones = torch.zeros(steps, batch, dtype=torch.bool)
    dones[2, 0] = dones[4, 1] = dones[6, 2] = True
    state0 = (torch.randn(batch, 6), torch.randn(batch, 6))
    outputs, last = core.unroll(x, state0, dones)
    assert outputs.shape == (steps, batch, 6)

    h, c = state0
    for t in range(steps):
        out, (h, c) = core(x[t], (h, c))
        torch.testing.assert_close(outputs[t], out)
        for b in range(batch):
            if dones[t, b]:  # an agent zeroes a session's state after its terminal step
                h, c = h.clone(), c.clone()
                h[b] = 0.0
                c[b] = 0.0
    torch.testing.assert_close(last[0], h)
    torch.testing.assert_close(last[1], c)
    assert not last[0][2].any()  # session 2 ended at the last step

    no_reset, _ = core.unroll(x, state0, torch.zeros(steps, batch))
    assert torch.equal(no_reset[:3, 0], outputs[:3, 0])
    assert not torch.allclose(no_reset[3, 0], outputs[3, 0])  # the reset changed step 3
    with pytest.raises(ValueError, match=r"dones: expected shape \(7, 3\), got \(7,\)"):
        core.unroll(x, state0, dones[:, 0])
    zeros = core.initial_state(4)
    assert zeros[0].shape == (4, 6) and not zeros[1].any()


# whole networks


@pytest.mark.parametrize("shared", [False, True])
def test_actor_critic_discrete(shared: bool) -> None:
    net = ActorCritic(VECTOR, DISCRETE, [16, 16], shared_torso=shared)
    head, value, memory = net(states(5))
    assert head.shape == (5, 3) and value.shape == (5,) and memory is None
    assert net.log_std is None and (net.value_torso is None) == shared
    dist = net.distribution(head)
    assert isinstance(dist, Categorical) and dist.sample().shape == (5,)
    seq = net.unroll(states(8).reshape(2, 4, 4))
    assert seq.head.shape == (2, 4, 3) and seq.value.shape == (2, 4)
    torch.testing.assert_close(seq.head[1], net(states(8)[4:]).head)


def test_actor_critic_shared_torso_has_fewer_parameters() -> None:
    separate = ActorCritic(VECTOR, DISCRETE, [16], shared_torso=False)
    shared = ActorCritic(VECTOR, DISCRETE, [16], shared_torso=True)
    torso = 4 * 16 + 16
    assert flat_parameters(separate).size - flat_parameters(shared).size == torso


def test_actor_critic_continuous() -> None:
    net = ActorCritic(VECTOR, BOX, [16], init_log_std=-0.5)
    head, value, _ = net(states(6))
    assert head.shape == (6, 2) and value.shape == (6,)
    assert net.log_std is not None and net.log_std.tolist() == [-0.5, -0.5]
    dist = net.distribution(head)
    assert isinstance(dist, DiagGaussian) and not dist.squash
    dist.log_prob(dist.sample()).sum().backward()
    assert net.log_std.grad is not None and net.log_std.grad.abs().sum() > 0
    squashed = ActorCritic(VECTOR, BOX, [16], squash=True)
    assert squashed.distribution(squashed(states(2)).head).sample().abs().max() < 1


def test_actor_critic_image_lstm_unroll_matches_steps() -> None:
    net = ActorCritic(IMAGE_HWC, DISCRETE, [32], "relu", shared_torso=True, lstm_size=8)
    steps, batch = 4, 2
    images = states(steps * batch, IMAGE_HWC).reshape(steps, batch, *IMAGE_HWC.shape)
    dones = torch.tensor([[False, True], [True, False], [False, False], [False, True]])
    seq = net.unroll(images, net.initial_memory(batch), dones)
    assert seq.head.shape == (steps, batch, 3) and seq.value.shape == (steps, batch)
    memory = net.initial_memory(batch)
    for t in range(steps):
        head, value, (h, c) = net(images[t], memory)
        torch.testing.assert_close(seq.head[t], head)
        torch.testing.assert_close(seq.value[t], value)
        keep = (~dones[t]).float().unsqueeze(-1)
        memory = (h * keep, c * keep)
    torch.testing.assert_close(seq.memory[0], memory[0])
    with pytest.raises(ValueError, match="expected the LSTM state"):
        net(images[0])
    with pytest.raises(ValueError, match="expected dones"):
        net.unroll(images, net.initial_memory(batch))
    with pytest.raises(ValueError, match="shared_torso=True"):
        ActorCritic(VECTOR, DISCRETE, [8], lstm_size=4)


def test_actor_critic_initial_vector_is_reproducible() -> None:
    def build() -> ActorCritic:
        return ActorCritic(VECTOR, BOX, [8])

    first, second = initial_vector(build, 3), initial_vector(build, 3)
    np.testing.assert_array_equal(first, second)
    assert first.size == flat_parameters(build()).size


def test_q_network_plain_and_dueling() -> None:
    plain = QNetwork(VECTOR, DISCRETE, [16])
    assert plain(states(5)).shape == (5, 3)
    dueling = QNetwork(VECTOR, DISCRETE, [16], dueling=True)
    x = states(5)
    q = dueling(x)
    assert q.shape == (5, 3)
    assert dueling.value is not None
    features = dueling.torso(x)
    value, advantage = dueling.value(features), dueling.advantage(features)
    # dueling identity: mean over actions of Q is V; Q minus its mean is A minus its mean
    torch.testing.assert_close(q.mean(dim=-1, keepdim=True), value)
    torch.testing.assert_close(
        q - q.mean(-1, keepdim=True), advantage - advantage.mean(-1, keepdim=True)
    )
    assert QNetwork(IMAGE_HWC, DISCRETE, [16])(states(2, IMAGE_HWC)).shape == (2, 3)
    with pytest.raises(ValueError, match="expected discrete actions"):
        QNetwork(VECTOR, BOX)


def test_deterministic_actor_stays_in_bounds() -> None:
    actor = DeterministicActor(VECTOR, BOX, [16])
    actions = actor(states(50) * 100)
    assert actions.shape == (50, 2)
    low, high = torch.tensor(BOX.low), torch.tensor(BOX.high)
    assert ((actions >= low) & (actions <= high)).all()
    with torch.no_grad():
        actor.head.bias.fill_(50.0)
        actor.head.weight.zero_()
    torch.testing.assert_close(actor(states(2)), high.expand(2, 2))
    assert "scale" not in actor.state_dict()  # bounds are not parameters or state
    assert flat_parameters(actor).size == sum(p.numel() for p in actor.parameters())
    with pytest.raises(ValueError, match="expected continuous actions"):
        DeterministicActor(VECTOR, DISCRETE)


def test_critic_single_and_twin() -> None:
    x, a = states(5), torch.randn(5, 2)
    single = Critic(VECTOR, BOX, [16])
    q = single(x, a)
    assert isinstance(q, torch.Tensor) and q.shape == (5,)
    torch.testing.assert_close(single.q1(x, a), q)
    twin = Critic(VECTOR, BOX, [16], twin=True)
    q1, q2 = twin(x, a)
    assert q1.shape == q2.shape == (5,)
    assert not torch.allclose(q1, q2)  # independent networks
    torch.testing.assert_close(twin.q1(x, a), q1)
    assert flat_parameters(twin).size == 2 * flat_parameters(single).size
    with pytest.raises(ValueError, match="expected a vector observation"):
        Critic(IMAGE_HWC, BOX)
    with pytest.raises(ValueError, match="expected continuous actions"):
        Critic(VECTOR, DISCRETE)


def test_output_gains_are_small_for_policy_heads() -> None:
    net = ActorCritic(VECTOR, DISCRETE, [16])
    row_norms = net.policy_head.weight.norm(dim=1)
    torch.testing.assert_close(row_norms, torch.full((3,), 0.01))
    assert math.isclose(net.value_head.weight.norm().item(), 1.0, rel_tol=1e-5)
