/**
 * Builders of every RLX message the client and its test fakes need, and readers of the
 * structured ones (relaax_zmq/protocol/messages.py).
 * @module messages
 */
import { DType, EpisodeFlag, Flag, MessageType, Role } from './constants.js';
import { ProtocolError } from './errors.js';
import { Message } from './message.js';
import { Tensor } from './tensor.js';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Ask for `sessionCount` sessions (sessionId 0: new ones; else resume that block). */
export function init(sessionCount = 1, { exploit = false, sessionId = 0n } = {}) {
  return new Message(MessageType.INIT, { flags: exploit ? Flag.EXPLOIT : 0, sessionId, sessionCount });
}

/** Grant the block `sessionId .. sessionId + sessionCount - 1` (server side; for fakes). */
export function ready(sessionId, sessionCount = 1, { exploit = false, versions = null, sequence = 0n } = {}) {
  const tensors = new Map();
  if (versions) tensors.set(Role.VERSIONS, Tensor.from(DType.UINT8, [versions.length], versions));
  return new Message(MessageType.READY, { flags: exploit ? Flag.EXPLOIT : 0, sequence, sessionId, sessionCount, tensors });
}

/** A message without tensors: reset, done, close or heartbeat. */
export function simple(type, sessionId = 0n, sessionCount = 1, { restart = false, sequence = 0n } = {}) {
  return new Message(type, { flags: restart ? Flag.RESTART : 0, sequence, sessionId, sessionCount });
}

/** The actions of a block, a Tensor of shape (N, ...) (server side; for fakes). */
export function action(sessionId, actions, { restart = false, sequence = 0n } = {}) {
  return new Message(MessageType.ACTION, {
    flags: restart ? Flag.RESTART : 0,
    sequence,
    sessionId,
    sessionCount: actions.shape[0],
    tensors: new Map([[Role.ACTION, actions]]),
  });
}

/** Refuse a request: an error code, a text, the versions spoken (server side; for fakes). */
export function error(code, text = '', { sequence = 0n, sessionId = 0n, sessionCount = 0, versions = null, restart = false } = {}) {
  const tensors = new Map([[Role.ERROR_CODE, Tensor.from(DType.UINT16, [], [code])]]);
  if (text) tensors.set(Role.TEXT, Tensor.of(utf8.encode(text)));
  if (versions) tensors.set(Role.VERSIONS, Tensor.from(DType.UINT8, [versions.length], versions));
  return new Message(MessageType.ERROR, { flags: restart ? Flag.RESTART : 0, sequence, sessionId, sessionCount, tensors });
}

/** The episode_flags tensor of N: bit 0x1 terminal, 0x2 truncated (array-likes of truthy values). */
export function episodeFlags(terminal, truncated) {
  const n = terminal.length;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) {
    data[i] = (terminal[i] ? EpisodeFlag.TERMINAL : 0) | (truncated[i] ? EpisodeFlag.TRUNCATED : 0);
  }
  return new Tensor(DType.UINT8, [n], data);
}

/**
 * Scalars (name -> number) and histograms (name -> array of numbers) in one METRICS message.
 * @param {Map<string, number>|object} scalars
 * @param {Map<string, ArrayLike<number>>|object} histograms
 */
export function metrics(sessionId, scalars = {}, histograms = {}, { sessionCount = 1 } = {}) {
  const tensors = new Map();
  const scalarList = entries(scalars);
  if (scalarList.length) {
    tensors.set(Role.METRIC_NAMES, names(scalarList));
    tensors.set(Role.METRIC_VALUES, Tensor.from(DType.FLOAT64, [scalarList.length], scalarList.map(([, v]) => v)));
  }
  const histogramList = entries(histograms).map(([k, v]) => [k, Float64Array.from(v, Number)]);
  if (histogramList.length) {
    const total = histogramList.reduce((sum, [, v]) => sum + v.length, 0);
    const flat = new Float64Array(total);
    let at = 0;
    for (const [, v] of histogramList) {
      flat.set(v, at);
      at += v.length;
    }
    tensors.set(Role.HISTOGRAM_NAMES, names(histogramList));
    tensors.set(Role.HISTOGRAM_LENGTHS, Tensor.from(DType.UINT32, [histogramList.length], histogramList.map(([, v]) => v.length)));
    tensors.set(Role.HISTOGRAM_VALUES, Tensor.of(flat));
  }
  return new Message(MessageType.METRICS, { sessionId, sessionCount, tensors });
}

/** {code, text, versions} of an ERROR message. */
export function readError(message) {
  const code = Number(message.tensor(Role.ERROR_CODE).data[0]);
  const text = message.tensor(Role.TEXT);
  const versions = message.tensor(Role.VERSIONS);
  return { code, text: text ? decodeText(text.data, 'text') : '', versions: versions ? Array.from(versions.data) : [] };
}

/** {scalars, histograms} (Maps) of a METRICS message; ProtocolError when the counts disagree. */
export function readMetrics(message) {
  const metricNames = readNames(message.tensor(Role.METRIC_NAMES), 'metric_names');
  const values = message.tensor(Role.METRIC_VALUES)?.data ?? new Float64Array(0);
  sameCount('metric_values', metricNames.length, values.length);
  const histogramNames = readNames(message.tensor(Role.HISTOGRAM_NAMES), 'histogram_names');
  const lengths = message.tensor(Role.HISTOGRAM_LENGTHS)?.data ?? new Uint32Array(0);
  sameCount('histogram_lengths', histogramNames.length, lengths.length);
  const flat = message.tensor(Role.HISTOGRAM_VALUES)?.data ?? new Float64Array(0);
  sameCount('histogram_values', lengths.reduce((a, b) => a + b, 0), flat.length);
  const histograms = new Map();
  let at = 0;
  histogramNames.forEach((name, i) => {
    histograms.set(name, flat.subarray(at, at + lengths[i]));
    at += lengths[i];
  });
  return { scalars: new Map(metricNames.map((name, i) => [name, values[i]])), histograms };
}

/** Throws ProtocolError unless `name` is a non-empty string without a newline. */
export function checkName(name) {
  if (typeof name !== 'string' || !name || name.includes('\n')) {
    throw new ProtocolError('metric name', 'a non-empty name without newlines', `"${String(name).replaceAll('\n', '\\n')}"`);
  }
  return name;
}

function entries(mapping) {
  return mapping instanceof Map ? [...mapping] : Object.entries(mapping);
}

function names(list) {
  return Tensor.of(utf8.encode(list.map(([name]) => checkName(name)).join('\n')));
}

function readNames(tensor, field) {
  if (!tensor || !tensor.elements) return [];
  const names = decodeText(tensor.data, field).split('\n');
  if (names.includes('')) throw new ProtocolError(field, 'non-empty names', `an empty name at index ${names.indexOf('')}`);
  return names;
}

function decodeText(bytes, field) {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ProtocolError(field, 'UTF-8 text', 'invalid bytes');
  }
}

function sameCount(field, expected, actual) {
  if (expected !== actual) throw new ProtocolError(field, `${expected} values`, `${actual} values`);
}
