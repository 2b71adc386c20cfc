/**
 * The wire dtypes as JavaScript typed arrays, and zero-copy views of received payloads.
 * float16 is stored as its raw bits (Uint16Array), bool as bytes 0/1 (Uint8Array),
 * (u)int64 as BigUint64Array/BigInt64Array.
 * @module dtypes
 */
import { DType } from './constants.js';

/** code -> {name, size, Array}: the spec's name, the item size, the storage typed array. */
export const DTYPES = Object.freeze({
  [DType.BOOL]: { name: 'bool', size: 1, Array: Uint8Array },
  [DType.UINT8]: { name: 'uint8', size: 1, Array: Uint8Array },
  [DType.INT8]: { name: 'int8', size: 1, Array: Int8Array },
  [DType.UINT16]: { name: 'uint16', size: 2, Array: Uint16Array },
  [DType.INT16]: { name: 'int16', size: 2, Array: Int16Array },
  [DType.UINT32]: { name: 'uint32', size: 4, Array: Uint32Array },
  [DType.INT32]: { name: 'int32', size: 4, Array: Int32Array },
  [DType.UINT64]: { name: 'uint64', size: 8, Array: BigUint64Array },
  [DType.INT64]: { name: 'int64', size: 8, Array: BigInt64Array },
  [DType.FLOAT16]: { name: 'float16', size: 2, Array: Uint16Array },
  [DType.FLOAT32]: { name: 'float32', size: 4, Array: Float32Array },
  [DType.FLOAT64]: { name: 'float64', size: 8, Array: Float64Array },
});

/** The dtype a typed array travels as (Uint16Array is uint16; float16 needs Tensor.from). */
export function dtypeOfArray(array) {
  const table = [
    [Float32Array, DType.FLOAT32],
    [Float64Array, DType.FLOAT64],
    [Int32Array, DType.INT32],
    [Uint8Array, DType.UINT8],
    [Int8Array, DType.INT8],
    [Uint16Array, DType.UINT16],
    [Int16Array, DType.INT16],
    [Uint32Array, DType.UINT32],
    [BigInt64Array, DType.INT64],
    [BigUint64Array, DType.UINT64],
  ];
  const hit = table.find(([ctor]) => array instanceof ctor);
  return hit ? hit[1] : null;
}

/** True on little-endian hosts (every browser and Node platform in practice). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `elements` items of `dtype` read from the little-endian bytes of `frame` (a Uint8Array):
 * a view on the same ArrayBuffer when the offset is aligned to the item size, else one copy.
 */
export function viewOf(dtype, frame, elements) {
  const { size, Array: Ctor } = DTYPES[dtype];
  if (!LITTLE_ENDIAN && size > 1) return new Ctor(swapped(frame, size).buffer, 0, elements);
  if (frame.byteOffset % size === 0) return new Ctor(frame.buffer, frame.byteOffset, elements);
  return new Ctor(frame.slice().buffer, 0, elements);
}

/** The little-endian bytes of a typed array: a view of it (a swapped copy on big-endian hosts). */
export function bytesOf(array) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  return LITTLE_ENDIAN || array.BYTES_PER_ELEMENT === 1 ? bytes : swapped(bytes, array.BYTES_PER_ELEMENT);
}

function swapped(bytes, size) {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  return out;
}
