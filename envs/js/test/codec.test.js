// The codec against every RLX v1 test vector, plus dtypes, float16 and zero-copy views.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  DType,
  MessageType,
  Message,
  ProtocolError,
  Role,
  Tensor,
  decode,
  encode,
  float16ToNumber,
  makeLimits,
  messages,
  numberToFloat16,
  packEnvelope,
  unpackEnvelope,
} from '../src/index.js';
import { parseVectors, toHex } from '../src/testing/vectors.js';

const VECTORS = parseVectors(
  readFileSync(new URL('../../../relaax_zmq/protocol/testdata/rlx_v1_vectors.txt', import.meta.url), 'utf8'),
);
const valid = VECTORS.filter((v) => v.message);
const invalid = VECTORS.filter((v) => !v.message);

function assertSameMessage(actual, expected) {
  for (const key of ['version', 'type', 'flags', 'sequence', 'sessionId', 'sessionCount']) {
    assert.equal(actual[key], expected[key], key);
  }
  assert.deepEqual([...actual.tensors.keys()].sort(), [...expected.tensors.keys()].sort());
  for (const [role, want] of expected.tensors) {
    const got = actual.tensor(role);
    assert.equal(got.dtype, want.dtype, `role ${role} dtype`);
    assert.deepEqual(got.shape, want.shape, `role ${role} shape`);
    assert.equal(toHex(got.bytes()), toHex(want.bytes()), `role ${role} bytes`);
  }
}

test('the vector file has valid and invalid entries', () => {
  assert.ok(valid.length >= 30 && invalid.length >= 30, `${valid.length} valid, ${invalid.length} invalid`);
});

test('each valid vector encodes to exactly its frames', () => {
  for (const v of valid) {
    assert.deepEqual(encode(v.message).map(toHex), v.frames.map(toHex), v.name);
  }
});

test('each valid vector decodes to exactly its meaning', () => {
  for (const v of valid) assertSameMessage(decode(v.frames), v.message);
});

test('each valid vector survives the WebSocket envelope', () => {
  for (const v of valid) assertSameMessage(decode(unpackEnvelope(packEnvelope(v.frames))), v.message);
});

test('each invalid vector is refused naming the same field', () => {
  for (const v of invalid) {
    assert.throws(() => decode(v.frames), (e) => e instanceof ProtocolError && e.field === v.errorField, v.name);
  }
});

test('a ProtocolError carries field, expected and actual', () => {
  const v = invalid.find((x) => x.name === 'too_many_sessions');
  assert.throws(() => decode(v.frames), {
    field: 'header.session_count',
    expected: '1..4096',
    actual: 4097,
    message: 'header.session_count: expected 1..4096, got 4097',
  });
  assert.equal(decode(v.frames, makeLimits({ maxSessions: 5000 })).sessionCount, 4097);
});

test('frames that are no bytes are refused naming the frame', () => {
  assert.throws(() => decode(['header']), { field: 'frames[0]' });
});

test('decoded payloads are views on the received buffer (zero copy)', () => {
  const v = valid.find((x) => x.name === 'update_truncated');
  const buffer = packEnvelope(v.frames);
  const message = decode(unpackEnvelope(buffer));
  const state = message.tensor(Role.STATE).data;
  assert.ok(state instanceof Float64Array);
  assert.equal(state.buffer, buffer);
  assert.equal(state[1], 1.0);
  new Float64Array(buffer, state.byteOffset, 1)[0] = 42;
  assert.equal(state[0], 42);
});

test('an unaligned payload is copied once into an aligned array', () => {
  const v = valid.find((x) => x.name === 'update_truncated');
  const shifted = v.frames.map((f) => {
    const b = new Uint8Array(f.length + 1);
    b.set(f, 1);
    return b.subarray(1);
  });
  const state = decode(shifted).tensor(Role.STATE);
  assert.deepEqual(Array.from(state.data), [0, 1]);
  assert.notEqual(state.data.buffer, shifted[3].buffer);
});

test('int64 and uint64 tensors are BigInt arrays', () => {
  const int64 = decode(valid.find((x) => x.name === 'update_int64_state').frames).tensor(Role.STATE);
  assert.ok(int64.data instanceof BigInt64Array);
  const uint64 = decode(valid.find((x) => x.name === 'update_uint64_state').frames).tensor(Role.STATE);
  assert.ok(uint64.data instanceof BigUint64Array);
  const big = Tensor.from(DType.UINT64, [1, 2], [2n ** 64n - 1n, 5]);
  const m = new Message(MessageType.UPDATE, { sessionId: 2n ** 63n, tensors: new Map([[Role.STATE, big]]) });
  const back = decode(encode(m));
  assert.equal(back.sessionId, 2n ** 63n);
  assert.deepEqual(Array.from(back.tensor(Role.STATE).data), [2n ** 64n - 1n, 5n]);
});

test('float16 converts like numpy (round half to even, subnormals, overflow, NaN)', () => {
  const cases = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
    [65519.99, 0x7bff], [65520, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00],
    [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001],
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [1 / 3, 0x3555],
  ];
  for (const [value, bits] of cases) assert.equal(numberToFloat16(value), bits, `${value}`);
  for (let bits = 0; bits < 0x10000; bits += 1) {
    const value = float16ToNumber(bits);
    if (!Number.isNaN(value)) assert.equal(numberToFloat16(value), bits, `bits ${bits}`);
  }
  const t = decode(valid.find((x) => x.name === 'update_float16_state').frames).tensor(Role.STATE);
  assert.deepEqual(Array.from(t.values()), [0.5, -2, 65504]);
});

test('bool tensors travel as bytes 0/1', () => {
  const t = Tensor.from(DType.BOOL, [1, 3], [true, false, 1]);
  assert.deepEqual(Array.from(t.data), [1, 0, 1]);
  const v = decode(valid.find((x) => x.name === 'update_bool_state').frames).tensor(Role.STATE);
  assert.equal(v.dtypeName, 'bool');
});

test('the encoder applies the decoder rules and names the field', () => {
  const state = (dtype, shape, values) => new Map([[Role.STATE, Tensor.from(dtype, shape, values)]]);
  const update = (tensors, extra = {}) => new Message(MessageType.UPDATE, { sessionId: 1n, tensors, ...extra });
  assert.throws(() => encode(update(state(DType.FLOAT32, [2, 1], [1, 2]))), { field: 'tensor[0].shape' });
  assert.throws(() => encode(update(new Map([[Role.REWARD, Tensor.from(DType.INT32, [1], [1])]]))), { field: 'tensor[0].dtype' });
  assert.throws(() => encode(update(new Map([[Role.ACTION, Tensor.from(DType.INT32, [1], [1])]]))), { field: 'tensor[0].role' });
  assert.throws(() => encode(update(state(DType.UINT8, new Array(9).fill(1), [1]))), { field: 'tensor[0].ndim' });
  assert.throws(() => encode(new Message(MessageType.ACTION, { sessionId: 1n })), { field: 'tensors' });
  assert.throws(() => encode(update(new Map(), { flags: 0x1 })), { field: 'header.flags' });
  assert.throws(() => encode(update(new Map(), { sequence: 2n ** 64n })), { field: 'header.sequence' });
  assert.throws(() => new Message(MessageType.INIT, { sessionId: 2 ** 60 }), { field: 'header.session_id' });
  const ends = messages.episodeFlags([1], [0]);
  assert.throws(() => encode(update(new Map([[Role.EPISODE_FLAGS, ends]]), { flags: 0x2 })), { field: 'header.flags' });
  assert.throws(() => Tensor.from(DType.FLOAT32, [2, 2], [1, 2, 3]), { field: 'tensor.data' });
});

test('metrics and errors read back as they were built', () => {
  const m = messages.metrics(9n, { episode_reward: 12.5, 'é': 1 }, new Map([['h', [1, 2, 3]], ['g', []]]));
  const back = messages.readMetrics(decode(encode(m)));
  assert.deepEqual([...back.scalars], [['episode_reward', 12.5], ['é', 1]]);
  assert.deepEqual(Array.from(back.histograms.get('h')), [1, 2, 3]);
  assert.equal(back.histograms.get('g').length, 0);
  assert.throws(() => messages.metrics(9n, { 'a\nb': 1 }), { field: 'metric name', actual: '"a\\nb"' });
  const e = messages.readError(decode(encode(messages.error(6, 'full', { versions: [1] }))));
  assert.deepEqual(e, { code: 6, text: 'full', versions: [1] });
});
