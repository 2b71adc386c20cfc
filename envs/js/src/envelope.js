/**
 * The WebSocket envelope: one RLX multipart message in one binary WebSocket message.
 *
 *   offset 0  u32 F           frame count, 1 .. 2 + max_tensors
 *   offset 4  u32 length[F]   byte length of each frame
 *   then      zero bytes up to a multiple of 8, then each frame followed by zero bytes up to a
 *             multiple of 8 (the last one too); all little-endian.
 *
 * Every frame starts 8-aligned, so decoded payloads are zero-copy typed-array views.
 * @module envelope
 */
import { ProtocolError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';

/** n rounded up to a multiple of 8. */
export const pad8 = (n) => Math.ceil(n / 8) * 8;

/** The most frames one message may have under `limits`: header, table and max_tensors payloads. */
export const maxFrames = (limits = DEFAULT_LIMITS) => 2 + limits.maxTensors;

/** One ArrayBuffer holding `frames` (Uint8Arrays) in the envelope. */
export function packEnvelope(frames) {
  const count = frames.length;
  let size = pad8(4 + 4 * count);
  for (const frame of frames) size += pad8(frame.byteLength);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, count, true);
  let at = pad8(4 + 4 * count);
  frames.forEach((frame, i) => {
    view.setUint32(4 + 4 * i, frame.byteLength, true);
    out.set(frame, at);
    at += pad8(frame.byteLength);
  });
  return out.buffer;
}

/**
 * The frames of one envelope: Uint8Array views of `data` (an ArrayBuffer or Uint8Array), each
 * 8-aligned relative to the buffer. Throws ProtocolError naming `envelope.*` when malformed.
 */
export function unpackEnvelope(data, limits = DEFAULT_LIMITS) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError('envelope', 'an ArrayBuffer or Uint8Array', data?.constructor?.name ?? typeof data);
  }
  const size = bytes.byteLength;
  if (size < 4) throw new ProtocolError('envelope.frame_count', 'a u32 frame count', `${size} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  const count = view.getUint32(0, true);
  const most = maxFrames(limits);
  if (count < 1 || count > most) throw new ProtocolError('envelope.frame_count', `1..${most}`, count);
  const start = pad8(4 + 4 * count);
  if (size < start) throw new ProtocolError('envelope.lengths', `${start} bytes of count and lengths`, `${size} bytes`);
  const lengths = Array.from({ length: count }, (_, i) => view.getUint32(4 + 4 * i, true));
  const total = lengths.reduce((sum, n) => sum + pad8(n), start);
  if (total !== size) throw new ProtocolError('envelope.size', `${total} bytes for frames of ${lengths.join(', ')} bytes`, `${size} bytes`);
  checkZeros(bytes, 4 + 4 * count, start);
  const frames = [];
  let at = start;
  for (const length of lengths) {
    frames.push(bytes.subarray(at, at + length));
    checkZeros(bytes, at + length, at + pad8(length));
    at += pad8(length);
  }
  return frames;
}

function checkZeros(bytes, from, to) {
  for (let i = from; i < to; i += 1) {
    if (bytes[i] !== 0) throw new ProtocolError('envelope.padding', 'zero bytes', `0x${bytes[i].toString(16)} at offset ${i}`);
  }
}
