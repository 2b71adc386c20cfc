"""End to end: a real broker, real worker processes and real clients over tcp loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import pytest
import zmq
from exchange_support import live_workers, local_name, running_exchange, status, wait_until

from relaax_zmq.client import AgentProxy, VectorAgentProxy
from relaax_zmq.errors import AgentError, EpisodeRestart
from relaax_zmq.protocol import decode, encode, messages
from relaax_zmq.protocol.constants import ErrorCode, MessageType

pytestmark = pytest.mark.timeout(120)


class CartPoleClient(threading.Thread):
    """Steps CartPole through an AgentProxy until stopped; records what happens."""

    def __init__(self, frontend: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.proxy = AgentProxy(frontend, request_timeout=5.0, retry_deadline=30.0)
        self.seed = seed
        self.stop = threading.Event()
        self.actions = 0
        self.restarts: list[float] = []
        self.action_times: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        env = gym.make("CartPole-v1")
        try:
            self.proxy.connect()
            self.proxy.init()
            obs, _ = env.reset(seed=self.seed)
            reward = None
            while not self.stop.is_set():
                try:
                    action = self.proxy.update(reward=reward, state=obs)
                    assert int(action) in (0, 1)
                    self.actions += 1
                    self.action_times.append(time.monotonic())
                    obs, reward, terminated, truncated, _ = env.step(int(action))
                    if terminated or truncated:
                        # the episode's last update can be told to restart too
                        self.proxy.update(reward=reward, terminal=terminated, truncated=truncated)
                        obs, _ = env.reset()
                        reward = None
                except EpisodeRestart:
                    self.restarts.append(time.monotonic())
                    obs, _ = env.reset()
                    reward = None
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.proxy.disconnect()
            env.close()


@contextmanager
def cartpole_clients(frontend: str, count: int) -> Iterator[list[CartPoleClient]]:
    """``count`` stepping clients, stopped and joined afterwards."""
    clients = [CartPoleClient(frontend, seed) for seed in range(count)]
    for c in clients:
        c.start()
    try:
        yield clients
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(10)


def _sessions_by_worker(admin: str) -> dict[str, int]:
    return {local_name(w["name"]): w["sessions"] for w in live_workers(admin)}


def test_sessions_spread_over_two_workers_and_actions_flow(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=2) as ex:
        with cartpole_clients(ex.frontend, 4) as clients:
            wait_until(lambda: all(c.actions > 200 for c in clients), 30, "actions to flow")
            assert _sessions_by_worker(ex.admin) == {"w0": 2, "w1": 2}, "least-loaded placement"
            rates = status(ex.admin)["rates"]
            assert rates["steps_per_s"] > 0
        assert [c.error for c in clients] == [None] * 4
        assert all(not c.restarts for c in clients)


def test_a_killed_worker_sessions_continue_on_the_other(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=2) as ex:
        with cartpole_clients(ex.frontend, 4) as clients:
            wait_until(lambda: all(c.actions > 50 for c in clients), 30, "actions to flow")
            victim = max(_sessions_by_worker(ex.admin).items(), key=lambda kv: kv[1])[0]
            survivor = "w1" if victim == "w0" else "w0"
            ex.workers[victim].kill9()
            killed_at = time.monotonic()
            wait_until(
                lambda: _sessions_by_worker(ex.admin) == {survivor: 4}, 5, "sessions re-homed"
            )
            # every client gets actions again within 5 s of the kill
            counts = [c.actions for c in clients]
            wait_until(
                lambda: all(c.actions > n + 20 for c, n in zip(clients, counts, strict=True)),
                5,
                "actions after the kill",
            )
            assert time.monotonic() - killed_at < 10
            restarted = [c for c in clients if c.restarts]
            assert len(restarted) >= 1, "the victim's clients are told to restart the episode"
            assert all(r >= killed_at for c in restarted for r in c.restarts)
            assert ex.broker.proc.poll() is None, "the broker stays up"
        assert [c.error for c in clients] == [None] * 4, ex.logs()


def test_refused_init_backs_off_and_is_accepted_when_room_frees(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, workers={"max_sessions": 1}) as ex:
        first = AgentProxy(ex.frontend)
        first.connect()
        first.init()
        second = AgentProxy(ex.frontend, retry_deadline=20.0)
        second.connect()
        accepted = threading.Event()
        thread = threading.Thread(target=lambda: (second.init(), accepted.set()), daemon=True)
        thread.start()
        wait_until(lambda: status(ex.admin)["counters"]["refused_inits"] >= 2, 10, "refusals")
        assert not accepted.is_set()
        first.disconnect()
        assert accepted.wait(10), "accepted once the first session closed"
        thread.join(5)
        action = second.update(state=np.zeros(4, np.float32))
        assert int(action) in (0, 1)
        second.disconnect()


def test_low_memory_refuses_new_sessions_with_the_figures(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"min_free_memory_mib": 10**9}) as ex:
        proxy = AgentProxy(ex.frontend, retry_deadline=0.5)
        proxy.connect()
        with pytest.raises(AgentError) as info:
            proxy.init()
        assert info.value.code == ErrorCode.BUSY
        assert "memory" in info.value.text
        proxy.disconnect()


def _raw_client(ctx: zmq.Context, frontend: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(frontend)
    return sock


def _reply(sock: zmq.Socket, timeout: float = 5.0):
    assert sock.poll(int(timeout * 1000)), "no reply"
    return decode(sock.recv_multipart())


def test_malformed_and_oversized_messages_are_answered_and_others_served(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"max_message_bytes": 65536}) as ex:
        ctx = zmq.Context.instance()
        good = AgentProxy(ex.frontend)
        good.connect()
        good.init()
        bad = _raw_client(ctx, ex.frontend)
        try:
            bad.send_multipart([b"RLXP" + b"\x00" * 28])
            code, text, _ = messages.read_error(_reply(bad))
            assert code == ErrorCode.UNSUPPORTED_VERSION and "header.version" in text
            bad.send_multipart([b"hello"])
            code, text, _ = messages.read_error(_reply(bad))
            assert code == ErrorCode.MALFORMED and "header" in text
            bad.send_multipart(encode(messages.init()))
            ready = _reply(bad)
            assert ready.type == MessageType.READY
            n = 4000  # every frame below 64 KiB, the message above it
            reward, state = np.zeros(n, np.float32), np.zeros((n, 4), np.float32)
            big = messages.update(ready.session_id, reward=reward, state=state)
            bad.send_multipart(encode(big))
            code, text, _ = messages.read_error(_reply(bad))
            assert code == ErrorCode.TOO_LARGE and "65536" in text
            # a payload that breaks the spec beyond the header: the worker answers it
            frames = encode(messages.update(ready.session_id, state=np.zeros((1, 4), np.float32)))
            frames[-1] = b"\x00" * 3
            bad.send_multipart(frames)
            code, text, _ = messages.read_error(_reply(bad))
            assert code == ErrorCode.MALFORMED and "payload" in text
            assert int(good.update(state=np.zeros(4, np.float32))) in (0, 1)
        finally:
            bad.close()
            good.disconnect()
        assert ex.broker.proc.poll() is None


def test_a_frame_above_the_socket_limit_drops_only_that_peer(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"max_message_bytes": 65536}) as ex:
        ctx = zmq.Context.instance()
        good = AgentProxy(ex.frontend)
        good.init()
        bad = _raw_client(ctx, ex.frontend)
        try:
            bad.send_multipart(encode(messages.init()))
            sid = _reply(bad).session_id
            huge = np.zeros((1, 40000), np.float32)  # one 160 kB frame > MAXMSGSIZE (128 KiB)
            bad.send_multipart(encode(messages.update(sid, state=huge)))
            assert not bad.poll(1000), "ZeroMQ drops the connection instead of answering"
            assert int(good.update(state=np.zeros(4, np.float32))) in (0, 1)
            assert ex.broker.proc.poll() is None
        finally:
            bad.close()
            good.disconnect()


def test_a_client_that_vanishes_mid_session_is_released(tmp_path) -> None:
    with running_exchange(tmp_path, worker_count=1, broker={"session_idle_timeout": 1.0}) as ex:
        ctx = zmq.Context.instance()
        ghost = _raw_client(ctx, ex.frontend)
        ghost.send_multipart(encode(messages.init()))
        sid = _reply(ghost).session_id
        ghost.send_multipart(encode(messages.update(sid, state=np.zeros((1, 4), np.float32))))
        assert _reply(ghost).type == MessageType.ACTION
        ghost.close()  # gone without a close message
        assert status(ex.admin)["sessions"]["sessions"] == 1
        wait_until(lambda: status(ex.admin)["sessions"]["sessions"] == 0, 5, "idle release")
        wait_until(lambda: _sessions_by_worker(ex.admin) == {"w0": 0}, 5, "worker released")
        other = AgentProxy(ex.frontend)
        other.connect()
        other.init()
        assert int(other.update(state=np.zeros(4, np.float32))) in (0, 1)
        other.disconnect()


def test_64_gymnasium_environments_in_one_batched_block(tmp_path) -> None:
    n = 64
    with running_exchange(tmp_path, worker_count=2) as ex:
        envs = [gym.make("CartPole-v1") for _ in range(n)]
        obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])
        proxy = VectorAgentProxy(ex.frontend, n)
        proxy.connect()
        proxy.init()
        rewards = None
        terminal = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        steps = 0
        for _ in range(100):
            actions = proxy.update(rewards, obs, terminal, truncated)
            assert actions.shape == (n,)
            ended = terminal | truncated
            rows = [
                (env.reset()[0], 0.0, False, False) if done else env.step(int(a))[:4]
                for env, a, done in zip(envs, actions, ended, strict=True)
            ]  # next-step autoreset: an ended row is followed by its reset observation
            steps += int((~ended).sum())
            obs = np.stack([r[0] for r in rows])
            rewards = np.array([r[1] for r in rows], np.float32)
            terminal = np.array([r[2] for r in rows])
            truncated = np.array([r[3] for r in rows])
        placed = _sessions_by_worker(ex.admin)
        assert sorted(placed.values()) == [0, n], "a block stays whole on one worker"
        assert status(ex.admin)["sessions"] == {"blocks": 1, "sessions": n}
        proxy.disconnect()
        assert steps > 90 * n
