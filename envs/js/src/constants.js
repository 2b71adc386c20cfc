/**
 * RLX protocol version 1: every constant of the wire format, in one place.
 * docs/protocol.md is the normative text; relaax_zmq/protocol/constants.py is its Python twin.
 * @module constants
 */

/** Frame 0 starts with these 4 bytes ("RLXP"). */
export const MAGIC = Object.freeze([0x52, 0x4c, 0x58, 0x50]);
export const VERSION = 1;
export const SUPPORTED_VERSIONS = Object.freeze([1]);
export const HEADER_SIZE = 32;
export const DESCRIPTOR_SIZE = 40;
export const MAX_NDIM = 8;

/** Header `type` byte. */
export const MessageType = Object.freeze({
  INIT: 1,
  READY: 2,
  UPDATE: 3,
  ACTION: 4,
  RESET: 5,
  DONE: 6,
  METRICS: 7,
  CLOSE: 8,
  HEARTBEAT: 9,
  ERROR: 10,
});

/** Header `flags` bits. */
export const Flag = Object.freeze({ EXPLOIT: 0x1, TERMINAL: 0x2, TRUNCATED: 0x4, RESTART: 0x8 });
export const KNOWN_FLAGS = 0xf;

/** Bits of each element of an `episode_flags` tensor. */
export const EpisodeFlag = Object.freeze({ TERMINAL: 0x1, TRUNCATED: 0x2 });
export const KNOWN_EPISODE_FLAGS = 0x3;

/** Descriptor `dtype` byte; every multi-byte type is little-endian. */
export const DType = Object.freeze({
  BOOL: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  UINT32: 6,
  INT32: 7,
  UINT64: 8,
  INT64: 9,
  FLOAT16: 10,
  FLOAT32: 11,
  FLOAT64: 12,
});

/** Descriptor `role`: what a tensor means inside its message. */
export const Role = Object.freeze({
  REWARD: 1,
  STATE: 2,
  EPISODE_FLAGS: 3,
  ACTION: 4,
  METRIC_NAMES: 5,
  METRIC_VALUES: 6,
  HISTOGRAM_NAMES: 7,
  HISTOGRAM_LENGTHS: 8,
  HISTOGRAM_VALUES: 9,
  ERROR_CODE: 10,
  TEXT: 11,
  VERSIONS: 12,
});

/** Value of the `error_code` tensor of an ERROR message. */
export const ErrorCode = Object.freeze({
  MALFORMED: 1,
  UNSUPPORTED_VERSION: 2,
  UNKNOWN_TYPE: 3,
  TOO_LARGE: 4,
  UNKNOWN_SESSION: 5,
  BUSY: 6,
  AUTH: 7,
  INTERNAL: 8,
  SHUTTING_DOWN: 9,
});

const nameOf = (table, code) => Object.keys(table).find((k) => table[k] === code);

/** The spec's name of a role (`state`), or `role 99`. */
export function roleName(role) {
  const name = nameOf(Role, role);
  return name ? name.toLowerCase() : `role ${role}`;
}

/** The spec's name of a message type (`update`), or `type 99`. */
export function typeName(type) {
  const name = nameOf(MessageType, type);
  return name ? name.toLowerCase() : `type ${type}`;
}

/** The name of an error code (`BUSY`), `TIMEOUT` for null, or `error 99`. */
export function errorCodeName(code) {
  if (code === null || code === undefined) return 'TIMEOUT';
  return nameOf(ErrorCode, code) ?? `error ${code}`;
}
