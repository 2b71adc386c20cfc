/**
 * Per-message limits of the decoder and encoder (relaax_zmq/protocol/limits.py).
 * @module limits
 */
import { ConfigError } from './errors.js';

/** The defaults of docs/protocol.md section 5. */
export const DEFAULT_LIMITS = Object.freeze({ maxElements: 2 ** 28, maxTensors: 64, maxSessions: 4096 });

const BOUNDS = { maxElements: [1, 2 ** 53 - 1], maxTensors: [0, 0xffff], maxSessions: [1, 0xffffffff] };

/** Limits with `options` over the defaults; a ConfigError names a value out of bounds. */
export function makeLimits(options = {}) {
  const limits = { ...DEFAULT_LIMITS, ...options };
  for (const [name, [low, high]] of Object.entries(BOUNDS)) {
    const value = limits[name];
    if (!Number.isInteger(value) || value < low || value > high) {
      throw new ConfigError(`limits.${name}`, `expected an integer in [${low}, ${high}], got ${value}`);
    }
  }
  for (const name of Object.keys(limits)) {
    if (!(name in BOUNDS)) throw new ConfigError(`limits.${name}`, `unknown limit (known: ${Object.keys(BOUNDS)})`);
  }
  return Object.freeze(limits);
}
