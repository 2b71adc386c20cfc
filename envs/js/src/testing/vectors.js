/**
 * Parse the RLX test-vector file (relaax_zmq/protocol/testdata/rlx_v1_vectors.txt; format in
 * relaax_zmq/protocol/vectors.py) into {name, frames, message | null, errorField, errorCode}
 * (errorCode: the ErrorCode a server answers the refused frames with).
 * @module testing/vectors
 */
import { DType } from '../constants.js';
import { Message } from '../message.js';
import { Tensor } from '../tensor.js';

const FLOATS = [DType.FLOAT16, DType.FLOAT32, DType.FLOAT64];
const BIGINTS = [DType.INT64, DType.UINT64];

/** The vectors of the file's text. */
export function parseVectors(text) {
  const vectors = [];
  let current = null;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const space = line.indexOf(' ');
    const [word, rest] = space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)];
    if (word === 'vector' || word === 'invalid') current = { name: rest, frames: [], message: null, errorField: null, errorCode: null };
    else if (current === null) throw new Error(`line ${index + 1}: ${word} outside a vector`);
    else if (word === 'header') current.message = header(pairs(rest));
    else if (word === 'tensor') {
      const [role, tensor] = tensorOf(pairs(rest));
      current.message.tensors.set(role, tensor);
    } else if (word === 'error') {
      const p = pairs(rest);
      current.errorField = p.field;
      current.errorCode = p.code === undefined ? null : Number(p.code);
    } else if (word === 'frame') current.frames.push(hexBytes(rest));
    else if (word === 'end') {
      vectors.push(current);
      current = null;
    } else throw new Error(`line ${index + 1}: unknown line ${word}`);
  });
  return vectors;
}

/** Lowercase hex of bytes. */
export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function hexBytes(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function pairs(text) {
  return Object.fromEntries(text.split(/\s+/).map((item) => [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)]));
}

function header(p) {
  const int = (key) => BigInt(p[key]);
  return new Message(Number(int('type')), {
    version: Number(int('version')),
    flags: Number(int('flags')),
    sequence: int('sequence'),
    sessionId: int('session_id'),
    sessionCount: Number(int('session_count')),
  });
}

function tensorOf(p) {
  const dtype = Number(p.dtype);
  const shape = p.shape ? p.shape.split(',').map(Number) : [];
  const words = p.values ? p.values.split(',') : [];
  let values;
  if (FLOATS.includes(dtype)) values = words.map((w) => ({ nan: NaN, inf: Infinity, '-inf': -Infinity })[w] ?? Number(w));
  else if (BIGINTS.includes(dtype)) values = words.map(BigInt);
  else values = words.map(Number);
  return [Number(p.role), Tensor.from(dtype, shape, values)];
}
