// The WebSocket envelope: layout, round trips, alignment and every malformed case.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ProtocolError, makeLimits, maxFrames, packEnvelope, pad8, unpackEnvelope } from '../src/index.js';

const bytes = (...values) => Uint8Array.from(values);
const field = (name) => (e) => e instanceof ProtocolError && e.field === name;

test('the layout: count, lengths, padding to 8, each frame padded to 8', () => {
  const buffer = packEnvelope([bytes(1, 2, 3), bytes(), bytes(9, 9, 9, 9, 9, 9, 9, 9, 9)]);
  const expected = [
    3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, // count, lengths (16 bytes, already 8-aligned)
    1, 2, 3, 0, 0, 0, 0, 0, // frame 0 + padding; frame 1 is empty
    9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, // frame 2 + padding
  ];
  assert.deepEqual(Array.from(new Uint8Array(buffer)), expected);
  const one = packEnvelope([bytes(7)]);
  assert.deepEqual(Array.from(new Uint8Array(one)), [1, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
});

test('round trips give the frames back, each starting 8-aligned', () => {
  for (const sizes of [[32], [32, 40, 4], [32, 80, 0, 1, 7, 8, 9, 4096], Array(66).fill(3)]) {
    const frames = sizes.map((n, k) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + k) & 0xff));
    const back = unpackEnvelope(packEnvelope(frames));
    assert.deepEqual(back.map((f) => Array.from(f)), frames.map((f) => Array.from(f)));
    for (const f of back) assert.equal(f.byteOffset % 8, 0);
    const size = pad8(4 + 4 * sizes.length) + sizes.reduce((a, n) => a + pad8(n), 0);
    assert.equal(packEnvelope(frames).byteLength, size);
  }
});

test('a Uint8Array at an offset unpacks too', () => {
  const inner = new Uint8Array(packEnvelope([bytes(5, 6)]));
  const outer = new Uint8Array(inner.length + 8);
  outer.set(inner, 8);
  assert.deepEqual(Array.from(unpackEnvelope(outer.subarray(8))[0]), [5, 6]);
});

test('malformed envelopes are refused naming what is wrong', () => {
  const good = new Uint8Array(packEnvelope([bytes(1, 2, 3), bytes(4)]));
  const edit = (fn) => {
    const copy = good.slice();
    fn(copy, new DataView(copy.buffer));
    return copy.buffer;
  };
  assert.throws(() => unpackEnvelope(new ArrayBuffer(0)), field('envelope.frame_count'));
  assert.throws(() => unpackEnvelope(new ArrayBuffer(3)), field('envelope.frame_count'));
  assert.throws(() => unpackEnvelope(edit((b, v) => v.setUint32(0, 0, true))), field('envelope.frame_count'));
  assert.throws(() => unpackEnvelope(edit((b, v) => v.setUint32(0, 67, true))), field('envelope.frame_count'));
  assert.throws(() => unpackEnvelope(Uint8Array.from([60, 0, 0, 0, 1, 0, 0, 0])), field('envelope.lengths'));
  assert.throws(() => unpackEnvelope(edit((b, v) => v.setUint32(4, 9, true))), field('envelope.size'));
  assert.throws(() => unpackEnvelope(edit((b, v) => v.setUint32(8, 0xffffffff, true))), field('envelope.size'));
  assert.throws(() => unpackEnvelope(good.slice(0, good.length - 8).buffer), field('envelope.size'));
  const longer = new Uint8Array(good.length + 8);
  longer.set(good);
  assert.throws(() => unpackEnvelope(longer.buffer), field('envelope.size'));
  assert.throws(() => unpackEnvelope(edit((b) => (b[12] = 1))), field('envelope.padding')); // after the lengths
  assert.throws(() => unpackEnvelope(edit((b) => (b[16 + 3] = 1))), field('envelope.padding')); // after frame 0
  assert.throws(() => unpackEnvelope(edit((b) => (b[b.length - 1] = 1))), field('envelope.padding')); // after the last
  assert.throws(() => unpackEnvelope('text'), field('envelope'));
});

test('the frame count limit follows max_tensors', () => {
  assert.equal(maxFrames(), 66);
  const frames = Array.from({ length: 5 }, () => bytes(1));
  assert.throws(() => unpackEnvelope(packEnvelope(frames), makeLimits({ maxTensors: 2 })), field('envelope.frame_count'));
  assert.equal(unpackEnvelope(packEnvelope(frames), makeLimits({ maxTensors: 3 })).length, 5);
});
