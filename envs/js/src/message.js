/**
 * `Message`: the decoded form of one RLX message, the header's fields and its tensors by role.
 * @module message
 */
import { VERSION, roleName, typeName } from './constants.js';
import { ProtocolError } from './errors.js';

export class Message {
  /**
   * @param {number} type a MessageType code
   * @param {object} [fields]
   * @param {number} [fields.flags] header flag bits
   * @param {bigint|number} [fields.sequence] u64, chosen by the requester (a transport sets it)
   * @param {bigint|number} [fields.sessionId] u64, first session of the block (0: none)
   * @param {number} [fields.sessionCount] N, sessions of the block
   * @param {Map<number, import('./tensor.js').Tensor>|object} [fields.tensors] tensors by Role code
   * @param {number} [fields.version]
   */
  constructor(type, { flags = 0, sequence = 0n, sessionId = 0n, sessionCount = 1, tensors = new Map(), version = VERSION } = {}) {
    this.type = type;
    this.flags = flags;
    this.sequence = u64('header.sequence', sequence);
    this.sessionId = u64('header.session_id', sessionId);
    this.sessionCount = sessionCount;
    this.tensors = tensors instanceof Map ? tensors : new Map(Object.entries(tensors).map(([r, t]) => [Number(r), t]));
    this.version = version;
  }

  /** The tensor of `role`, or undefined. */
  tensor(role) {
    return this.tensors.get(role);
  }

  toString() {
    const parts = [...this.tensors].map(([role, t]) => `${roleName(role)}=${t.dtypeName}[${t.shape}]`).join(', ');
    return `Message(${typeName(this.type)}, v${this.version}, flags=0x${this.flags.toString(16)}, seq=${this.sequence}, session=${this.sessionId}x${this.sessionCount}, [${parts}])`;
  }
}

function u64(field, value) {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new ProtocolError(field, 'an integer 0..2**64-1 (a bigint above 2**53)', value);
  return BigInt(value);
}
