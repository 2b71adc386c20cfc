/**
 * The error hierarchy of the client, mirroring relaax_zmq/errors.py:
 * RlxError > ProtocolError, AgentError (> RequestTimeout), EpisodeRestart, ConnectionClosed, ConfigError.
 * @module errors
 */
import { errorCodeName } from './constants.js';

/** Base class of every error the client throws. */
export class RlxError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** A message breaks the RLX protocol: `field` names the part, `expected` and `actual` say why. */
export class ProtocolError extends RlxError {
  constructor(field, expected, actual, detail = '') {
    const text = `${field}: expected ${show(expected)}, got ${show(actual)}`;
    super(detail ? `${text} (${detail})` : text);
    this.field = field;
    this.expected = expected;
    this.actual = actual;
    this.detail = detail;
  }
}

/** The server refused a request: `code` (an ErrorCode number), `codeName` and the server's `text`. */
export class AgentError extends RlxError {
  constructor(code, text = '') {
    const codeName = errorCodeName(code);
    super(text ? `${codeName}: ${text}` : codeName);
    this.code = code;
    this.codeName = codeName;
    this.text = text;
  }
}

/** No reply came within the request timeout (`code` is null, `codeName` TIMEOUT). */
export class RequestTimeout extends AgentError {
  constructor(timeout, what) {
    super(null, `no reply to ${what} within ${timeout} s`);
    this.timeout = timeout;
  }
}

/** The WebSocket closed (or never opened): `code` and `reason` of its close event. */
export class ConnectionClosed extends RlxError {
  constructor(code, reason = '', what = '') {
    const why = reason ? `${code} ${reason}` : `${code}`;
    super(what ? `connection closed (${why}) during ${what}` : `connection closed (${why})`);
    this.code = code;
    this.reason = reason;
  }
}

/** The server lost or moved the session: reset the environments, start new episodes. */
export class EpisodeRestart extends RlxError {}

/** An option is missing, of the wrong type or impossible; `path` names it. */
export class ConfigError extends RlxError {
  constructor(path, message) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

function show(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `(${value.join(', ')}${value.length === 1 ? ',' : ''})`;
  return String(value);
}
