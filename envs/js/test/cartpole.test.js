// CartPole against gymnasium's own numbers, the vector form's autoreset, and the runner's
// conventions (NaN rows, episode metrics) through a fake gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  BlockProxy,
  CartPole,
  DType,
  MessageType,
  Role,
  Tensor,
  VectorCartPole,
  VectorRunner,
  cartpoleStep,
  messages,
  runCartPole,
} from '../src/index.js';
import { FakeGateway } from '../src/testing/fake_websocket.js';

const FIXTURE = JSON.parse(readFileSync(new URL('./fixtures/cartpole_gymnasium.json', import.meta.url), 'utf8'));

test('the physics reproduces gymnasium step for step', () => {
  for (const { name, start, steps } of FIXTURE.trajectories) {
    const state = Float64Array.from(start);
    for (const [k, step] of steps.entries()) {
      const terminated = cartpoleStep(state, 0, step.action);
      step.state.forEach((v, i) => assert.ok(Math.abs(state[i] - v) <= 1e-12 * Math.max(1, Math.abs(v)), `${name} step ${k} state[${i}]`));
      assert.deepEqual(Array.from(Float32Array.from(state)), step.observation, `${name} step ${k} observation`);
      assert.equal(terminated, step.terminated, `${name} step ${k} terminated`);
    }
    assert.ok(steps.at(-1).terminated, `${name} ends terminated`);
  }
});

test('reset is uniform in [-0.05, 0.05) and seedable; truncation at 500 steps; reward 1', () => {
  const a = new CartPole({ seed: 3 });
  const b = new CartPole({ seed: 3 });
  const first = Array.from(a.reset());
  assert.deepEqual(Array.from(b.reset()), first);
  assert.ok(first.every((v) => v >= -0.05 && v < 0.05));
  assert.notDeepEqual(Array.from(a.reset()), first, 'the stream continues');
  assert.deepEqual(Array.from(a.reset({ seed: 3 })), first, 'reseeding starts it again');
  let out;
  for (let k = 0; k < 500; k += 1) {
    a.state.fill(0); // keep it balanced: only the time limit ends it
    out = a.step(k % 2);
    assert.equal(out.reward, 1);
    assert.equal(out.truncated, k === 499);
  }
});

test('the vector form resets an ended environment on the next step (NEXT_STEP)', () => {
  const env = new VectorCartPole({ n: 2, seed: 0 });
  env.reset();
  env.envs[0].state.set([2.39, 1, 0, 0]); // about to leave the track
  let out = env.step([1, 1]);
  assert.deepEqual([...out.terminated], [1, 0]);
  assert.equal(out.rewards[0], 1);
  out = env.step(Tensor.from(DType.INT64, [2, 1], [1, 0]));
  assert.deepEqual([...out.autoreset], [1, 0]);
  assert.deepEqual([...out.terminated], [0, 0]);
  assert.equal(out.rewards[0], 0);
  assert.ok(Math.abs(out.observations[0]) < 0.05, 'env 0 starts a new episode');
  assert.deepEqual(Array.from(env.stateTensor().shape), [2, 4]);
});

function fakeBroker({ restartAt = -1 } = {}) {
  let updates = 0;
  return new FakeGateway((request) => {
    if (request.type === MessageType.INIT) return messages.ready(request.sessionId || 50n, request.sessionCount);
    if (request.type === MessageType.UPDATE) {
      updates += 1;
      const pushes = Array.from({ length: request.sessionCount }, (_, i) => i % 2);
      return messages.action(request.sessionId, Tensor.from(DType.INT64, [request.sessionCount], pushes), { restart: updates === restartAt });
    }
    return request.type === MessageType.CLOSE ? null : messages.simple(MessageType.DONE, request.sessionId, request.sessionCount);
  });
}

test('the runner: NaN rows after episode ends, no rewards after a restart, episode metrics', async () => {
  const gateway = fakeBroker({ restartAt: 60 });
  const proxy = new BlockProxy({ url: 'ws://x', n: 3, WebSocket: gateway.WebSocket });
  const episodes = [];
  const runner = new VectorRunner(proxy, new VectorCartPole({ n: 3, seed: 1 }), { onEpisode: (r, i) => episodes.push([r, i]) });
  const summary = await runner.run({ until: (r) => r.steps >= 300 });
  assert.ok(summary.steps >= 300 && summary.episodes === episodes.length && summary.episodes > 10, JSON.stringify(summary));
  assert.equal(summary.restarts, 1);
  assert.ok(episodes.every(([r]) => r >= 8 && r < 100), 'always pushing one way ends episodes early');
  const updates = gateway.requests.filter((r) => r.type === MessageType.UPDATE);
  assert.equal(updates[0].tensor(Role.REWARD), undefined, 'first update: no rewards');
  assert.equal(updates[60].tensor(Role.REWARD), undefined, 'first update after the restart: no rewards');
  for (let k = 1; k < updates.length; k += 1) {
    const before = updates[k - 1].tensor(Role.EPISODE_FLAGS).data;
    const rewards = updates[k].tensor(Role.REWARD)?.data;
    if (rewards) before.forEach((flags, i) => assert.equal(Number.isNaN(rewards[i]), flags !== 0, `update ${k} row ${i}`));
  }
  const reported = gateway.requests.filter((r) => r.type === MessageType.METRICS).map((m) => messages.readMetrics(m).scalars);
  const withEpisodes = reported.filter((s) => s.has('episode_reward'));
  assert.ok(withEpisodes.every((s) => s.has('episode_length') && s.has('env_steps') && s.has('episodes')));
  assert.equal(withEpisodes.reduce((a, s) => a + s.get('episodes'), 0), summary.episodes);
  // env_steps travels with episode ends: the steps after the last one are not reported
  assert.equal(withEpisodes.reduce((a, s) => a + s.get('env_steps'), 0), runner.reported);
  assert.deepEqual(gateway.requests.slice(-2).map((r) => r.type), [MessageType.METRICS, MessageType.CLOSE]);
});

test('runCartPole reports, stops on steps and summarises', async () => {
  const gateway = fakeBroker();
  const reports = [];
  const summary = await runCartPole({ url: 'ws://x', n: 4, steps: 200, WebSocket: gateway.WebSocket, reportEvery: 0, onReport: (s) => reports.push(s) });
  assert.ok(summary.steps >= 200 && summary.steps < 204);
  assert.ok(summary.meanReward100 > 0 && summary.seconds > 0);
  assert.ok(reports.length > 10 && reports.every((r) => 'episodes' in r && 'meanReward100' in r));
  assert.equal(gateway.sockets[0].closedWith[0], 1000);
});
