/**
 * `Tensor`: a dtype code, a shape and a typed array of its elements in C order.
 * Decoded tensors are views on the received message's ArrayBuffer (see dtypes.viewOf).
 * @module tensor
 */
import { DType } from './constants.js';
import { DTYPES, bytesOf, dtypeOfArray } from './dtypes.js';
import { decodeFloat16, encodeFloat16 } from './float16.js';
import { ProtocolError } from './errors.js';

export class Tensor {
  /**
   * @param {number} dtype a DType code
   * @param {number[]} shape the dimensions ([] is a scalar of one element)
   * @param {ArrayBufferView} data the elements in the dtype's storage array (DTYPES[dtype].Array)
   */
  constructor(dtype, shape, data) {
    const info = DTYPES[dtype];
    if (!info) throw new ProtocolError('tensor.dtype', 'a dtype code 1..12', dtype);
    const dims = Array.from(shape, Number);
    if (!dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ProtocolError('tensor.shape', 'non-negative integer dimensions', dims);
    }
    if (!(data instanceof info.Array)) {
      throw new ProtocolError('tensor.data', `a ${info.Array.name} for ${info.name}`, data?.constructor?.name ?? typeof data);
    }
    const elements = dims.reduce((a, b) => a * b, 1);
    if (data.length !== elements) {
      throw new ProtocolError('tensor.data', `${elements} elements for shape (${dims})`, `${data.length} elements`);
    }
    this.dtype = dtype;
    this.shape = dims;
    this.data = data;
  }

  /** A tensor of `dtype` and `shape` from plain values (numbers, booleans or bigints). */
  static from(dtype, shape, values) {
    const info = DTYPES[dtype];
    if (!info) throw new ProtocolError('tensor.dtype', 'a dtype code 1..12', dtype);
    let data;
    if (dtype === DType.FLOAT16) data = encodeFloat16(values);
    else if (info.Array === BigInt64Array || info.Array === BigUint64Array) {
      data = info.Array.from(values, (v) => BigInt(v));
    } else if (dtype === DType.BOOL) data = Uint8Array.from(values, (v) => (v ? 1 : 0));
    else data = info.Array.from(values, Number);
    return new Tensor(dtype, shape, data);
  }

  /** A tensor of a typed array as it is (no copy); `shape` defaults to its length. */
  static of(array, shape = [array.length]) {
    const dtype = dtypeOfArray(array);
    if (dtype === null) {
      throw new ProtocolError('tensor.data', 'a typed array', array?.constructor?.name ?? typeof array);
    }
    return new Tensor(dtype, shape, array);
  }

  get ndim() {
    return this.shape.length;
  }

  get elements() {
    return this.data.length;
  }

  get itemsize() {
    return DTYPES[this.dtype].size;
  }

  /** The spec's dtype name (`float32`). */
  get dtypeName() {
    return DTYPES[this.dtype].name;
  }

  /** The elements as numbers where they differ from the storage: float16 decoded; else `data`. */
  values() {
    return this.dtype === DType.FLOAT16 ? decodeFloat16(this.data) : this.data;
  }

  /** The elements of row `i` of the leading dimension (a subarray view of `data`). */
  row(i) {
    const width = this.shape.slice(1).reduce((a, b) => a * b, 1);
    return this.data.subarray(i * width, (i + 1) * width);
  }

  /** The payload bytes as they travel (little-endian; a view of `data` on little-endian hosts). */
  bytes() {
    return bytesOf(this.data);
  }
}
