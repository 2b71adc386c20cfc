"""The worker's socket-free parts: the link clock and control reading, the batcher, stacking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relaax_zmq.errors import ProtocolError
from relaax_zmq.protocol import messages
from relaax_zmq.protocol.constants import MessageType
from relaax_zmq.protocol.link import LINK_VERSION, Command, control
from relaax_zmq.testing.linear_policy.agent import LinearPolicyAgent
from relaax_zmq.worker.batcher import Batcher
from relaax_zmq.worker.blocks import Block
from relaax_zmq.worker.broker_link import Due, LinkClock, read_control, registration
from relaax_zmq.worker.host import SessionHost
from relaax_zmq.worker.stacking import Step, act_steps

# interval 1 s, liveness 3: the broker is silent after 3 s, the worker declared dead after 4 s
INTERVAL, LIVENESS = 1.0, 3


def clock() -> LinkClock:
    return LinkClock(INTERVAL, LIVENESS, now=100.0)


def test_heartbeat_is_due_once_per_interval():
    c = clock()
    assert c.due(100.5) == Due.NOTHING and c.wait(100.5) == pytest.approx(0.1)
    c.sent(100.9)
    assert c.due(101.0) == Due.HEARTBEAT
    assert c.due(101.5) == Due.NOTHING  # scheduled one interval on
    assert c.due(102.0) == Due.HEARTBEAT


def test_a_silent_broker_is_due_a_reconnect_until_registered_again():
    c = clock()
    for t in (100.8, 101.6, 102.4, 103.2):  # the worker keeps sending
        c.sent(t)
    assert not c.due(103.0) & Due.RECONNECT
    c.heard(101.0)
    assert not c.due(103.9) & Due.RECONNECT
    assert c.due(104.1) & Due.RECONNECT
    c.registered(104.2)
    assert not c.due(104.3) & Due.RECONNECT


def test_the_longest_mute_since_registering_fences_even_after_sending_again():
    c = clock()
    c.sent(100.5)
    c.sent(105.0)  # 4.5 s without sending (stopped): the broker has declared the worker dead
    c.heard(105.0)
    assert c.declared_dead(105.0) and c.due(105.0) == Due.FENCE
    c.registered(105.1)
    assert not c.declared_dead(105.2) and c.due(105.2) == Due.NOTHING


def test_the_fence_margin_is_at_least_a_second():
    c = LinkClock(0.1, 3, now=0.0)
    assert c.dead == pytest.approx(1.3)
    c.heard(1.2)
    assert not c.declared_dead(1.2) and c.declared_dead(1.4)


def test_registration_and_control_reading():
    reg = json.loads(registration("w9@vm", "a1b2", 16)[1])
    assert reg["worker"] == "w9@vm" and reg["instance"] == "a1b2" and reg["capacity"] == 16
    assert reg["link_version"] == LINK_VERSION == 2
    body = read_control(Command.RELEASE, control(Command.RELEASE, session_id=5))
    assert body == {"session_id": 5}
    with pytest.raises(ProtocolError, match="2 frames"):
        read_control(Command.RELEASE, [Command.RELEASE.value])
    with pytest.raises(ProtocolError, match="broker -> worker"):
        read_control(Command.REGISTER, registration("w9@vm", "a1b2", 16))


def test_batcher_is_full_at_max_batch_sessions_of_updates_and_answers_in_order():
    host = SessionHost(LinearPolicyAgent({"actions": 2}))
    host.assign(1, 2)
    host.assign(5, 1)
    batcher = Batcher(host, max_batch=3)
    obs = np.zeros((2, 4), np.float32)
    assert not batcher.add("a", messages.simple(MessageType.RESET, 5, 1, sequence=1), 0.0)
    assert not batcher.add("b", messages.update(1, state=obs, sequence=2), 0.0)
    assert batcher.holds(1) and batcher.holds(5) and not batcher.holds(7)
    assert batcher.add("c", messages.update(5, state=obs[:1], sequence=3), 0.0)
    sent: list = []
    assert batcher.flush(lambda key, reply: sent.append((key, reply.sequence)))
    assert sent == [("a", 1), ("b", 2), ("c", 3)]
    assert not batcher.holds(1) and batcher.sessions == 0 and not batcher.flush(sent.append)
    assert batcher.latency.count == 3
    batcher.add("d", messages.update(1, state=obs, sequence=4), 0.0)
    batcher.clear()
    assert not batcher.flush(sent.append) and len(sent) == 3


def _step(index: int, first: int, count: int) -> Step:
    state = np.full((count, 1), first, np.float32)
    return Step(index, Block(first, count), messages.update(first, state=state), False)


def test_act_steps_groups_by_shape_splits_actions_back_and_fails_only_a_failed_chunk():
    wide = Step(3, Block(40, 1), messages.update(40, state=np.zeros((1, 2), np.float32)), False)
    steps = [_step(0, 10, 3), _step(1, 20, 1), wide, _step(2, 30, 2)]
    calls: list[list[int]] = []

    def act(batch):
        calls.append(batch.session_ids.tolist())
        if 30 in batch.session_ids.tolist() and 20 not in batch.session_ids.tolist():
            return ValueError("refused")
        return batch.states[:, 0] * 2

    out = act_steps(act, steps, max_batch=4)
    assert calls == [[10, 11, 12, 20], [30, 31], [40]]
    assert [s.index for s, _ in out] == [0, 1, 2, 3]  # group by group
    assert out[0][1].tolist() == [20, 20, 20] and out[1][1].tolist() == [40]
    assert isinstance(out[2][1], ValueError) and out[3][1].tolist() == [0]
    calls.clear()
    out = act_steps(act, steps[:2] + steps[3:], max_batch=2)  # step 0 spans two chunks
    assert calls == [[10, 11], [12, 20], [30, 31]]
    assert out[0][1].tolist() == [20, 20, 20] and isinstance(out[2][1], ValueError)
