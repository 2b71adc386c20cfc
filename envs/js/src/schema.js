/**
 * Which tensors, flags and session counts each RLX message type admits
 * (relaax_zmq/protocol/schema.py); encoder and decoder enforce them in the spec's order.
 * @module schema
 */
import { DType, Flag, MessageType, Role } from './constants.js';

/** How a role's shape relates to the header's session count N. */
export const Shape = Object.freeze({ SESSION_VECTOR: 1, PER_SESSION: 2, VECTOR: 3, SCALAR: 4 });

const FLOATS = [DType.FLOAT32, DType.FLOAT64];
const ANY = Object.values(DType);
const rule = (dtypes, shape) => Object.freeze({ dtypes: Object.freeze(dtypes), shape });

/** role -> {dtypes, shape} */
export const ROLE_RULES = Object.freeze({
  [Role.REWARD]: rule(FLOATS, Shape.SESSION_VECTOR),
  [Role.STATE]: rule(ANY, Shape.PER_SESSION),
  [Role.EPISODE_FLAGS]: rule([DType.UINT8], Shape.SESSION_VECTOR),
  [Role.ACTION]: rule(ANY, Shape.PER_SESSION),
  [Role.METRIC_NAMES]: rule([DType.UINT8], Shape.VECTOR),
  [Role.METRIC_VALUES]: rule([DType.FLOAT64], Shape.VECTOR),
  [Role.HISTOGRAM_NAMES]: rule([DType.UINT8], Shape.VECTOR),
  [Role.HISTOGRAM_LENGTHS]: rule([DType.UINT32], Shape.VECTOR),
  [Role.HISTOGRAM_VALUES]: rule(FLOATS, Shape.VECTOR),
  [Role.ERROR_CODE]: rule([DType.UINT16], Shape.SCALAR),
  [Role.TEXT]: rule([DType.UINT8], Shape.VECTOR),
  [Role.VERSIONS]: rule([DType.UINT8], Shape.VECTOR),
});

const type = (flags, roles, required, minSessions) =>
  Object.freeze({ flags, roles: Object.freeze(roles), required: Object.freeze(required), minSessions });
const METRICS = [
  Role.METRIC_NAMES,
  Role.METRIC_VALUES,
  Role.HISTOGRAM_NAMES,
  Role.HISTOGRAM_LENGTHS,
  Role.HISTOGRAM_VALUES,
];

/** message type -> {flags, roles, required, minSessions} */
export const TYPE_RULES = Object.freeze({
  [MessageType.INIT]: type(Flag.EXPLOIT, [], [], 1),
  [MessageType.READY]: type(Flag.EXPLOIT, [Role.VERSIONS], [], 1),
  [MessageType.UPDATE]: type(Flag.TERMINAL | Flag.TRUNCATED, [Role.REWARD, Role.STATE, Role.EPISODE_FLAGS], [], 1),
  [MessageType.ACTION]: type(Flag.RESTART, [Role.ACTION], [Role.ACTION], 1),
  [MessageType.RESET]: type(0, [], [], 1),
  [MessageType.DONE]: type(Flag.RESTART, [], [], 0),
  [MessageType.METRICS]: type(0, METRICS, [], 1),
  [MessageType.CLOSE]: type(0, [], [], 0),
  [MessageType.HEARTBEAT]: type(0, [], [], 0),
  [MessageType.ERROR]: type(Flag.RESTART, [Role.ERROR_CODE, Role.TEXT, Role.VERSIONS], [Role.ERROR_CODE], 0),
});
