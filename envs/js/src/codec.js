/**
 * The RLX v1 codec: a Message <-> its frames (Uint8Arrays), with the checks of docs/protocol.md
 * section 5 in the same order and naming the same fields as relaax_zmq/protocol/reference.py.
 * Payloads are never copied: encode sends views of the tensors' arrays, decode returns views of
 * the received frames (aligned ones; see dtypes.viewOf).
 * @module codec
 */
import { DESCRIPTOR_SIZE, Flag, KNOWN_EPISODE_FLAGS, MAX_NDIM, Role, roleName } from './constants.js';
import { DTYPES, viewOf } from './dtypes.js';
import { ProtocolError } from './errors.js';
import * as header from './header.js';
import { DEFAULT_LIMITS } from './limits.js';
import { Message } from './message.js';
import { ROLE_RULES, Shape, TYPE_RULES } from './schema.js';
import { Tensor } from './tensor.js';

const BROADCAST_EPISODE_FLAGS = Flag.TERMINAL | Flag.TRUNCATED;

/** The frames of `message`: header, descriptor table, payloads (ascending role order). */
export function encode(message, limits = DEFAULT_LIMITS) {
  const roles = [...message.tensors.keys()].sort((a, b) => a - b);
  const head = {
    version: message.version,
    type: message.type,
    flags: message.flags,
    sequence: message.sequence,
    sessionId: message.sessionId,
    sessionCount: message.sessionCount,
    tensorCount: roles.length,
  };
  const rule = header.check(head, limits);
  const frame0 = header.pack(head);
  if (!roles.length) {
    checkRequired(rule, message.tensors);
    return [frame0];
  }
  const table = new Uint8Array(DESCRIPTOR_SIZE * roles.length);
  const view = new DataView(table.buffer);
  const payloads = roles.map((role, i) => {
    const tensor = message.tensors.get(role);
    if (!(tensor instanceof Tensor)) throw new ProtocolError(`${roleName(role)}`, 'a Tensor', tensor?.constructor?.name ?? typeof tensor);
    if (tensor.ndim > MAX_NDIM) throw new ProtocolError(`tensor[${i}].ndim`, `at most ${MAX_NDIM}`, tensor.ndim);
    if (tensor.shape.some((d) => d > 0xffffffff)) throw new ProtocolError(`tensor[${i}].shape`, 'dimensions below 2**32', tensor.shape);
    const shape = [...tensor.shape, ...new Array(MAX_NDIM - tensor.ndim).fill(0)];
    checkTensor(i, role, tensor.dtype, tensor.ndim, shape, rule, message.sessionCount, limits, new Set());
    const at = i * DESCRIPTOR_SIZE;
    view.setUint16(at, role, true);
    view.setUint8(at + 2, tensor.dtype);
    view.setUint8(at + 3, tensor.ndim);
    shape.forEach((d, k) => view.setUint32(at + 8 + 4 * k, d, true));
    return tensor.bytes();
  });
  checkRequired(rule, message.tensors);
  checkEpisodeFlags(message.flags, message.tensors);
  return [frame0, table, ...payloads];
}

/** The Message of `frames` (Uint8Arrays, ArrayBuffers or other ArrayBufferViews). */
export function decode(frames, limits = DEFAULT_LIMITS) {
  const bytes = Array.from(frames, asBytes);
  const head = header.read(bytes, limits);
  const rule = TYPE_RULES[head.type];
  const count = head.tensorCount;
  const tensors = new Map();
  if (count) {
    const table = bytes[1];
    if (table.byteLength !== DESCRIPTOR_SIZE * count) {
      throw new ProtocolError('descriptors', `${DESCRIPTOR_SIZE * count} bytes`, `${table.byteLength} bytes`);
    }
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let i = 0; i < count; i += 1) {
      const at = i * DESCRIPTOR_SIZE;
      const reserved = view.getUint32(at + 4, true);
      if (reserved) throw new ProtocolError(`tensor[${i}].reserved`, 0, reserved);
      const role = view.getUint16(at, true);
      const dtype = view.getUint8(at + 2);
      const ndim = view.getUint8(at + 3);
      const shape = Array.from({ length: MAX_NDIM }, (_, k) => view.getUint32(at + 8 + 4 * k, true));
      const elements = checkTensor(i, role, dtype, ndim, shape, rule, head.sessionCount, limits, tensors);
      const payload = bytes[2 + i];
      const expected = elements * DTYPES[dtype].size;
      if (payload.byteLength !== expected) {
        throw new ProtocolError(`tensor[${i}].payload`, `${expected} bytes`, `${payload.byteLength} bytes`);
      }
      tensors.set(role, new Tensor(dtype, shape.slice(0, ndim), viewOf(dtype, payload, elements)));
    }
  }
  checkRequired(rule, tensors);
  checkEpisodeFlags(head.flags, tensors);
  return new Message(head.type, {
    flags: head.flags,
    sequence: head.sequence,
    sessionId: head.sessionId,
    sessionCount: head.sessionCount,
    tensors,
    version: head.version,
  });
}

/** Validate one descriptor (step 4 of the spec, up to the payload); returns its element count. */
function checkTensor(i, role, dtype, ndim, shape, rule, n, limits, seen) {
  const field = `tensor[${i}]`;
  const roleRule = ROLE_RULES[role];
  if (!roleRule) throw new ProtocolError(`${field}.role`, 'a role 1..12', role);
  if (!rule.roles.includes(role)) {
    const allowed = rule.roles.map(roleName).sort().join(', ') || 'none';
    throw new ProtocolError(`${field}.role`, `one of: ${allowed}`, roleName(role));
  }
  if (seen.has(role)) throw new ProtocolError(`${field}.role`, 'each role at most once', `${roleName(role)} again`);
  if (!DTYPES[dtype]) throw new ProtocolError(`${field}.dtype`, 'a dtype code 1..12', dtype);
  if (!roleRule.dtypes.includes(dtype)) {
    const allowed = roleRule.dtypes.map((c) => DTYPES[c].name).join(', ');
    throw new ProtocolError(`${field}.dtype`, `one of ${allowed} for ${roleName(role)}`, DTYPES[dtype].name);
  }
  if (ndim > MAX_NDIM) throw new ProtocolError(`${field}.ndim`, `at most ${MAX_NDIM}`, ndim);
  if (shape.slice(ndim).some((d) => d !== 0)) throw new ProtocolError(`${field}.shape`, 'unused dimensions 0', `[${shape}]`);
  const dims = shape.slice(0, ndim);
  const elements = dims.reduce((a, b) => a * b, 1);
  if (elements > limits.maxElements) {
    const exact = dims.reduce((a, b) => a * BigInt(b), 1n);
    throw new ProtocolError(`${field}.elements`, `at most ${limits.maxElements}`, exact);
  }
  // an empty tensor's other dimensions are bounded too
  const nonZero = dims.filter((d) => d !== 0);
  if (nonZero.reduce((a, b) => a * b, 1) > limits.maxElements) {
    const span = nonZero.reduce((a, b) => a * BigInt(b), 1n);
    throw new ProtocolError(
      `${field}.elements`,
      `non-zero dimensions whose product is at most ${limits.maxElements}`,
      span,
    );
  }
  checkShape(field, roleRule.shape, dims, n);
  return elements;
}

function checkShape(field, shapeRule, dims, n) {
  let ok;
  let want;
  if (shapeRule === Shape.SESSION_VECTOR) [ok, want] = [dims.length === 1 && dims[0] === n, `(${n},)`];
  else if (shapeRule === Shape.PER_SESSION) [ok, want] = [dims.length >= 1 && dims[0] === n, `(${n}, ...)`];
  else if (shapeRule === Shape.VECTOR) [ok, want] = [dims.length === 1, 'one dimension'];
  else [ok, want] = [dims.length === 0, 'a scalar ()'];
  if (!ok) throw new ProtocolError(`${field}.shape`, want, dims);
}

function checkRequired(rule, tensors) {
  const missing = [...rule.required].sort((a, b) => a - b).filter((r) => !tensors.has(r));
  if (missing.length) throw new ProtocolError('tensors', `a ${roleName(missing[0])} tensor`, 'none');
}

function checkEpisodeFlags(flags, tensors) {
  const ends = tensors.get(Role.EPISODE_FLAGS);
  if (!ends) return;
  if (flags & BROADCAST_EPISODE_FLAGS) {
    throw new ProtocolError('header.flags', 'no terminal/truncated bits beside an episode_flags tensor', `0x${flags.toString(16)}`);
  }
  const max = ends.data.reduce((a, b) => Math.max(a, b), 0);
  if (max & ~KNOWN_EPISODE_FLAGS) {
    throw new ProtocolError('episode_flags', `only bits 0x${KNOWN_EPISODE_FLAGS.toString(16)}`, `0x${max.toString(16)}`);
  }
}

/** Validation step 1: frame `i` as a Uint8Array over the same memory. */
function asBytes(frame, i) {
  if (frame instanceof Uint8Array) return frame;
  if (frame instanceof ArrayBuffer) return new Uint8Array(frame);
  if (ArrayBuffer.isView(frame)) return new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
  throw new ProtocolError(`frames[${i}]`, 'a bytes-like object (Uint8Array, ArrayBuffer)', frame?.constructor?.name ?? typeof frame);
}
