// AgentProxy and BlockProxy over the real transport, envelope and codec, against a fake gateway:
// reply matching, RESTART, BUSY backoff, error codes, timeouts, reconnect and resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  AgentError,
  AgentProxy,
  Backoff,
  BlockProxy,
  ConnectionClosed,
  DType,
  EpisodeRestart,
  ErrorCode,
  Flag,
  MessageType,
  ProtocolError,
  Role,
  Tensor,
  WebSocketTransport,
  messages,
} from '../src/index.js';
import { FakeGateway } from '../src/testing/fake_websocket.js';

const { INIT, UPDATE, RESET, METRICS, CLOSE, HEARTBEAT, DONE } = MessageType;

/** A gateway handler acting as the broker; `script[type]` lists replies to use first, in order. */
function broker(script = {}, sessionId = 100n) {
  return (request, socket) => {
    const queue = script[request.type];
    if (queue?.length) {
      const next = queue.shift();
      return typeof next === 'function' ? next(request, socket) : next;
    }
    const n = request.sessionCount;
    if (request.type === INIT) return messages.ready(request.sessionId || sessionId, n);
    if (request.type === UPDATE) return messages.action(request.sessionId, Tensor.from(DType.INT64, [n], new Array(n).fill(1)));
    if (request.type === RESET || request.type === METRICS) return messages.simple(DONE, request.sessionId, n);
    if (request.type === HEARTBEAT) return messages.simple(HEARTBEAT, request.sessionId, n);
    return null;
  };
}

function setup(script = {}, options = {}) {
  const gateway = new FakeGateway(broker(script), options.gateway);
  const slept = [];
  const backoff = new Backoff({ random: () => 0.5, sleep: async (s) => void slept.push(s) });
  const Proxy = options.n ? BlockProxy : AgentProxy;
  const proxy = new Proxy({ url: 'ws://gateway/rlx', WebSocket: gateway.WebSocket, backoff, requestTimeout: 0.2, ...options.proxy, ...(options.n ? { n: options.n } : {}) });
  const types = () => gateway.requests.map((r) => r.type);
  return { gateway, proxy, slept, types };
}

const state = [0.1, 0.2, 0.3, 0.4];

test('an episode: init, first step without reward, steps, terminal step, metrics after it', async () => {
  const { gateway, proxy, types } = setup();
  assert.equal(await proxy.init(), 100n);
  assert.equal(proxy.sessionId, 100n);
  const socket = gateway.sockets[0];
  assert.deepEqual(socket.protocols, ['rlx.v1']);
  assert.equal(socket.binaryType, 'arraybuffer');
  assert.equal(await proxy.update({ state }), 1);
  assert.equal(await proxy.update({ reward: 1, state }), 1);
  proxy.metrics.scalar('episode_reward', 2);
  await proxy.update({ reward: 1, state, terminal: true });
  assert.deepEqual(types(), [INIT, UPDATE, UPDATE, UPDATE, METRICS]);
  const [, first, second, last, sent] = gateway.requests;
  assert.equal(first.tensor(Role.REWARD), undefined);
  assert.deepEqual(first.tensor(Role.STATE).shape, [1, 4]);
  assert.equal(first.tensor(Role.STATE).dtypeName, 'float32');
  assert.deepEqual(Array.from(second.tensor(Role.REWARD).data), [1]);
  assert.equal(last.flags, Flag.TERMINAL);
  const { scalars } = messages.readMetrics(sent);
  assert.equal(scalars.get('episode_reward'), 2);
  assert.ok(scalars.get('action_latency_client_ms') >= 0);
  assert.ok(new Set(gateway.requests.map((r) => r.sequence)).size === 5, 'fresh sequences');
  proxy.close();
});

test('the token is offered as a second subprotocol; a bad token is refused before connecting', async () => {
  const { gateway, proxy } = setup({}, { proxy: { token: 'abc_DEF-123' } });
  await proxy.connect();
  assert.deepEqual(gateway.sockets[0].protocols, ['rlx.v1', 'rlx-token.abc_DEF-123']);
  proxy.close();
  assert.throws(() => new AgentProxy({ url: 'ws://x', WebSocket: gateway.WebSocket, token: 'a=b' }), { path: 'token' });
  assert.throws(() => new AgentProxy({ url: 'ws://x', WebSocket: undefined }), { path: 'WebSocket' });
});

test('a block: rewards with NaN rows, per-session episode flags, (n,) actions', async () => {
  const { gateway, proxy } = setup({}, { n: 3 });
  await proxy.init({ exploit: true });
  assert.equal(gateway.requests[0].flags, Flag.EXPLOIT);
  assert.equal(gateway.requests[0].sessionCount, 3);
  const states = new Float32Array(12);
  const actions = await proxy.update({ states });
  assert.deepEqual(actions.shape, [3]);
  assert.deepEqual(Array.from(actions.data), [1n, 1n, 1n]);
  await proxy.update({ rewards: new Float32Array([1, NaN, 2]), states, terminal: [0, 1, 0], truncated: [0, 0, 1] });
  const update = gateway.requests[2];
  assert.equal(update.flags, 0);
  assert.deepEqual(Array.from(update.tensor(Role.EPISODE_FLAGS).data), [0, 1, 2]);
  assert.ok(Number.isNaN(update.tensor(Role.REWARD).data[1]));
  assert.deepEqual(update.tensor(Role.STATE).shape, [3, 4]);
  await assert.rejects(proxy.update({ rewards: [1, 2], states }), RangeError);
  proxy.close();
});

test('stale replies are dropped; pipelined requests match their replies by sequence', async () => {
  const stale = messages.simple(DONE, 100n, 1, { sequence: 12345n });
  const { gateway, proxy } = setup({ [RESET]: [(r) => [stale, messages.simple(DONE, r.sessionId, 1)]] });
  await proxy.init();
  await proxy.reset();
  proxy.close();
  const held = [];
  const gateway2 = new FakeGateway((request) => {
    held.push(request);
    if (held.length < 2) return null;
    return held.map((r) => messages.simple(HEARTBEAT, 0n, 0, { sequence: r.sequence })).reverse();
  });
  const transport = new WebSocketTransport({ url: 'ws://x', WebSocket: gateway2.WebSocket });
  const a = transport.request(messages.simple(HEARTBEAT, 0n, 0), 1);
  const b = transport.request(messages.simple(HEARTBEAT, 0n, 0), 1);
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.sequence, held[0].sequence);
  assert.equal(rb.sequence, held[1].sequence);
  transport.close();
  assert.equal(gateway.sockets.length, 1);
});

test('RESTART on an action throws EpisodeRestart and keeps the block', async () => {
  const restart = (r) => messages.action(r.sessionId, Tensor.from(DType.INT64, [1], [0]), { restart: true });
  const { proxy, types } = setup({ [UPDATE]: [restart] });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), EpisodeRestart);
  assert.equal(proxy.restarts, 1);
  assert.equal(proxy.sessionId, 100n);
  assert.equal(await proxy.update({ state }), 1);
  assert.deepEqual(types(), [INIT, UPDATE, UPDATE]);
  proxy.close();
});

test('UNKNOWN_SESSION or an error with RESTART opens a new block, then throws EpisodeRestart', async () => {
  for (const reply of [messages.error(ErrorCode.UNKNOWN_SESSION, 'expired'), messages.error(ErrorCode.BUSY, 'moved', { restart: true })]) {
    const { gateway, proxy, types } = setup({ [UPDATE]: [reply], [INIT]: [messages.ready(100n, 1), messages.ready(200n, 1)] });
    await proxy.init();
    await assert.rejects(proxy.update({ state }), EpisodeRestart);
    assert.deepEqual(types(), [INIT, UPDATE, INIT]);
    assert.equal(gateway.requests[2].sessionId, 0n, 'a new block, not a resume');
    assert.equal(proxy.sessionId, 200n);
    proxy.close();
  }
});

test('BUSY init is retried with jittered exponential backoff', async () => {
  const busy = messages.error(ErrorCode.BUSY, 'no capacity');
  const { proxy, slept, types } = setup({ [INIT]: [busy, busy, busy] });
  assert.equal(await proxy.init(), 100n);
  assert.deepEqual(slept.map((s) => +s.toFixed(9)), [0.075, 0.15, 0.3]); // nominal 0.1, 0.2, 0.4, each drawn at its middle
  assert.deepEqual(types(), [INIT, INIT, INIT, INIT]);
  proxy.close();
  const late = setup({ [INIT]: [busy] }, { proxy: { retryDeadline: 0 } });
  await assert.rejects(late.proxy.init(), (e) => e instanceof AgentError && e.code === 6 && e.codeName === 'BUSY' && e.text === 'no capacity');
  late.proxy.close();
});

test('error replies throw AgentError with the code and the text', async () => {
  const { proxy } = setup({ [UPDATE]: [messages.error(ErrorCode.MALFORMED, 'tensor[0].shape: expected (1, ...)')] });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), {
    name: 'AgentError',
    code: 1,
    codeName: 'MALFORMED',
    text: 'tensor[0].shape: expected (1, ...)',
    message: 'MALFORMED: tensor[0].shape: expected (1, ...)',
  });
  proxy.close();
  const refused = setup({ [INIT]: [messages.error(ErrorCode.AUTH, 'bad key')] });
  await assert.rejects(refused.proxy.init(), { code: ErrorCode.AUTH });
  refused.proxy.close();
});

test('no reply in time: the socket is dropped, a new one resumes the block, EpisodeRestart', async () => {
  const { gateway, proxy, types } = setup({ [UPDATE]: [null] }, { proxy: { requestTimeout: 0.05 } });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), (e) => e instanceof EpisodeRestart && /no reply to update within 0.05 s/.test(e.message));
  assert.equal(gateway.sockets.length, 2);
  assert.equal(gateway.sockets[0].closedWith[0], 4000);
  assert.deepEqual(types(), [INIT, UPDATE, INIT]);
  assert.equal(gateway.requests[2].sessionId, 100n, 'resumed with the old session id');
  assert.equal(await proxy.update({ state }), 1);
  proxy.close();
});

test('a close by the gateway rejects pending requests with its code and reason; the block resumes', async () => {
  const { gateway, proxy, types } = setup({ [UPDATE]: [{ close: 1001, reason: 'going away' }] });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), (e) => e instanceof EpisodeRestart && /1001 going away/.test(e.message));
  assert.equal(gateway.sockets.length, 2);
  assert.deepEqual(types(), [INIT, UPDATE, INIT]);
  proxy.close();
  const g = new FakeGateway(() => ({ close: 1011, reason: 'internal' }));
  const transport = new WebSocketTransport({ url: 'ws://x', WebSocket: g.WebSocket });
  await assert.rejects(transport.request(messages.init(1), 1), (e) => e instanceof ConnectionClosed && e.code === 1011 && e.reason === 'internal');
});

test('a policy close (1008) is not retried', async () => {
  const { gateway, proxy } = setup({ [UPDATE]: [{ close: 1008, reason: 'rate' }] });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), (e) => e instanceof ConnectionClosed && e.code === 1008);
  assert.equal(gateway.sockets.length, 1);
});

test('a connection closed while idle resumes the block on the next call', async () => {
  const { gateway, proxy, types } = setup();
  await proxy.init();
  gateway.sockets[0].serverClose(1001, 'idle');
  await new Promise((resolve) => setTimeout(resolve, 5));
  await assert.rejects(proxy.update({ state }), EpisodeRestart);
  assert.deepEqual(types(), [INIT, INIT]);
  assert.equal(gateway.requests[1].sessionId, 100n);
  proxy.close();
});

test('refused handshakes are retried with backoff until the gateway accepts', async () => {
  let refusals = 2;
  const { proxy, slept } = setup({}, { gateway: { refuse: () => (refusals-- > 0 ? 1006 : null) } });
  assert.equal(await proxy.init(), 100n);
  assert.equal(slept.length, 2);
  proxy.close();
  const never = setup({}, { gateway: { refuse: () => 1006 } });
  never.proxy.retryDeadline = 0;
  await assert.rejects(never.proxy.init(), (e) => e instanceof ConnectionClosed && e.code === 1006);
});

test('a gateway selecting another subprotocol is refused', async () => {
  const { proxy } = setup({}, { gateway: { protocol: '' } });
  await assert.rejects(proxy.init(), (e) => e instanceof ProtocolError && e.field === 'websocket.protocol');
});

test('malformed replies and text messages reject the request with a ProtocolError', async () => {
  const { proxy } = setup({ [UPDATE]: [{ raw: new ArrayBuffer(12) }, { raw: 'hello' }] });
  await proxy.init();
  await assert.rejects(proxy.update({ state }), (e) => e instanceof ProtocolError && e.field.startsWith('envelope'));
  await assert.rejects(proxy.update({ state }), (e) => e instanceof ProtocolError && e.field === 'websocket.message');
  proxy.close();
});

test('reset flushes metrics then ends the episodes; close sends metrics and close unawaited', async () => {
  const { gateway, proxy, types } = setup({ [RESET]: [messages.simple(DONE, 100n, 1, { restart: true })] });
  await proxy.init();
  proxy.metrics.mean('m', 1);
  proxy.metrics.mean('m', 3);
  proxy.metrics.histogram('h', [1, 2]);
  await proxy.reset(); // RESTART on done: swallowed
  const { scalars, histograms } = messages.readMetrics(gateway.requests[1]);
  assert.equal(scalars.get('m'), 2);
  assert.deepEqual(Array.from(histograms.get('h')), [1, 2]);
  await proxy.heartbeat();
  proxy.metrics.scalar('last', 7);
  proxy.close();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(types(), [INIT, METRICS, RESET, HEARTBEAT, METRICS, CLOSE]);
  assert.equal(proxy.sessionId, null);
  assert.deepEqual(gateway.sockets[0].closedWith, [1000, 'client closed']);
});
