/**
 * IEEE 754 binary16 by hand (no Float16Array in Node 20): bits <-> numbers, round half to even,
 * as numpy's float16 does.
 * @module float16
 */

const scratch = new DataView(new ArrayBuffer(8));

/** The number a binary16 bit pattern (0..0xffff) stands for. */
export function float16ToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The binary16 bit pattern nearest to `value` (ties to even; overflow to infinity; NaN 0x7e00). */
export function numberToFloat16(value) {
  const x = Number(value);
  scratch.setFloat64(0, x);
  const sign = scratch.getUint8(0) & 0x80 ? 0x8000 : 0;
  if (Number.isNaN(x)) return sign | 0x7e00;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 plus half a step rounds to infinity
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (1024 is the smallest normal)
  let exponent = Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent -= 1;
  else if (2 ** (exponent + 1) <= a) exponent += 1;
  const mantissa = roundHalfEven((a / 2 ** exponent - 1) * 1024); // a carry of 1024 bumps the exponent
  return sign | (((exponent + 15) << 10) + mantissa);
}

/** Decode a whole Uint16Array of binary16 bits into a Float32Array (exact: binary16 fits binary32). */
export function decodeFloat16(bits) {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i += 1) out[i] = float16ToNumber(bits[i]);
  return out;
}

/** Encode numbers into a Uint16Array of binary16 bits. */
export function encodeFloat16(values) {
  const list = Array.from(values, Number);
  const out = new Uint16Array(list.length);
  for (let i = 0; i < list.length; i += 1) out[i] = numberToFloat16(list[i]);
  return out;
}

function roundHalfEven(v) {
  const low = Math.floor(v);
  const rest = v - low;
  if (rest > 0.5) return low + 1;
  if (rest < 0.5) return low;
  return low % 2 === 0 ? low : low + 1;
}
