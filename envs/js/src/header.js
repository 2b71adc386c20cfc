/**
 * The RLX v1 header (frame 0, 32 bytes): pack, unpack, and validation steps 1-3 of the spec
 * (frames, header, frame count), as relaax_zmq/protocol/header.py.
 * @module header
 */
import { HEADER_SIZE, KNOWN_FLAGS, MAGIC, SUPPORTED_VERSIONS, typeName } from './constants.js';
import { ProtocolError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import { TYPE_RULES } from './schema.js';

const U64_MAX = 2n ** 64n - 1n;
const hex = (n) => `0x${n.toString(16)}`;

/** Frame 0 of `head` ({version, type, flags, sequence, sessionId, sessionCount, tensorCount}). */
export function pack(head) {
  for (const [field, value] of [['sequence', head.sequence], ['session_id', head.sessionId]]) {
    if (value < 0n || value > U64_MAX) throw new ProtocolError(`header.${field}`, '0..2**64-1', value);
  }
  const frame = new Uint8Array(HEADER_SIZE);
  const view = new DataView(frame.buffer);
  frame.set(head.magic ?? MAGIC, 0);
  view.setUint8(4, head.version);
  view.setUint8(5, head.type);
  view.setUint16(6, head.flags, true);
  view.setBigUint64(8, head.sequence, true);
  view.setBigUint64(16, head.sessionId, true);
  view.setUint32(24, head.sessionCount, true);
  view.setUint16(28, head.tensorCount, true);
  view.setUint16(30, head.reserved ?? 0, true);
  return frame;
}

/** The header fields of a 32-byte frame (not checked). */
export function unpack(frame) {
  if (frame.byteLength !== HEADER_SIZE) {
    throw new ProtocolError('header', `${HEADER_SIZE} bytes`, `${frame.byteLength} bytes`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, HEADER_SIZE);
  return {
    magic: frame.subarray(0, 4),
    version: view.getUint8(4),
    type: view.getUint8(5),
    flags: view.getUint16(6, true),
    sequence: view.getBigUint64(8, true),
    sessionId: view.getBigUint64(16, true),
    sessionCount: view.getUint32(24, true),
    tensorCount: view.getUint16(28, true),
    reserved: view.getUint16(30, true),
  };
}

/** Check `head` in the spec's order; returns the rule of its message type. */
export function check(head, limits = DEFAULT_LIMITS) {
  const { magic, version, type, flags, reserved, sessionCount, tensorCount } = head;
  if (magic && !MAGIC.every((b, i) => magic[i] === b)) {
    throw new ProtocolError('header.magic', '52 4c 58 50 (RLXP)', Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join(' '));
  }
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new ProtocolError('header.version', `one of [${SUPPORTED_VERSIONS}]`, version);
  }
  const rule = TYPE_RULES[type];
  if (!rule) throw new ProtocolError('header.type', 'a message type 1..10', type);
  if (flags & ~KNOWN_FLAGS) throw new ProtocolError('header.flags', `only bits ${hex(KNOWN_FLAGS)}`, hex(flags));
  if (flags & ~rule.flags) {
    throw new ProtocolError('header.flags', `only bits ${hex(rule.flags)} for ${typeName(type)}`, hex(flags));
  }
  if (reserved) throw new ProtocolError('header.reserved', 0, reserved);
  if (!(sessionCount >= rule.minSessions && sessionCount <= limits.maxSessions)) {
    throw new ProtocolError('header.session_count', `${rule.minSessions}..${limits.maxSessions}`, sessionCount);
  }
  if (tensorCount > limits.maxTensors) {
    throw new ProtocolError('header.tensor_count', `at most ${limits.maxTensors}`, tensorCount);
  }
  return rule;
}

/** The checked header of `frames` (Uint8Arrays): validation steps 1-3. */
export function read(frames, limits = DEFAULT_LIMITS) {
  if (!frames.length) throw new ProtocolError('frames', 'at least 1 frame (the header)', '0 frames');
  const head = unpack(frames[0]);
  check(head, limits);
  const expected = 1 + (head.tensorCount > 0 ? 1 : 0) + head.tensorCount;
  if (frames.length !== expected) throw new ProtocolError('frames', `${expected} frames`, `${frames.length} frames`);
  return head;
}
