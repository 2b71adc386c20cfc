/**
 * `WebSocketTransport`: RLX requests and replies over one WebSocket to the gateway.
 *
 * Each binary WebSocket message is one RLX message in the envelope (envelope.js). Requests get
 * a fresh sequence and are matched to replies by it (stale replies are dropped). A request
 * without reply in time throws the socket away (the "Lazy Pirate" pattern of
 * relaax_zmq/client/connection.py) and rejects with RequestTimeout; a close rejects every pending
 * request with ConnectionClosed(code, reason). The next request opens a new socket.
 * @module transport
 */
import { HEADER_SIZE, MAGIC, typeName } from './constants.js';
import { decode, encode } from './codec.js';
import { packEnvelope, unpackEnvelope } from './envelope.js';
import { ConfigError, ConnectionClosed, ProtocolError, RequestTimeout } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';

/** The subprotocol the client offers and the gateway selects. */
export const SUBPROTOCOL = 'rlx.v1';
/** Prefix of the second subprotocol carrying the access token. */
export const TOKEN_PREFIX = 'rlx-token.';
const TOKEN = /^[A-Za-z0-9_-]+$/;
const U64_MASK = 2n ** 64n - 1n;

/** The subprotocols to offer: `rlx.v1`, then `rlx-token.<token>` when a token is given. */
export function subprotocols(token = null) {
  if (token === null || token === undefined || token === '') return [SUBPROTOCOL];
  if (typeof token !== 'string' || !TOKEN.test(token)) {
    throw new ConfigError('token', 'URL-safe base64 characters (A-Z a-z 0-9 - _), no padding');
  }
  return [SUBPROTOCOL, TOKEN_PREFIX + token];
}

export class WebSocketTransport {
  /**
   * @param {object} options
   * @param {string} options.url `ws://host:port/rlx` or `wss://...`
   * @param {string} [options.token] access token (offered as a subprotocol)
   * @param {typeof WebSocket} [options.WebSocket] constructor (default globalThis.WebSocket)
   * @param {object} [options.limits] decoder/encoder limits (limits.makeLimits)
   * @param {number} [options.openTimeout] seconds to wait for the handshake (10)
   */
  constructor({ url, token = null, WebSocket = globalThis.WebSocket, limits = DEFAULT_LIMITS, openTimeout = 10 }) {
    if (typeof WebSocket !== 'function') {
      throw new ConfigError('WebSocket', 'a WebSocket constructor (globalThis.WebSocket is missing: pass {WebSocket}, or run node --experimental-websocket)');
    }
    this.url = url;
    this.protocols = subprotocols(token);
    this.WebSocket = WebSocket;
    this.limits = limits;
    this.openTimeout = openTimeout;
    this.socket = null;
    this.opening = null;
    this.generation = 0; // sockets opened so far: a change means a new client to the gateway
    this.pending = new Map(); // sequence -> {resolve, reject, timer, what}
    this.nextSequence = BigInt(1 + Math.floor(Math.random() * 2 ** 32));
  }

  get isOpen() {
    return this.socket !== null;
  }

  /** Open the socket (a no-op when open); rejects with ConnectionClosed when it cannot. */
  open() {
    if (this.socket) return Promise.resolve();
    this.opening ??= this.connect().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  /** Send `message` with a fresh sequence; resolves to the reply carrying that sequence. */
  async request(message, timeout) {
    await this.open();
    const data = this.pack(message);
    const sequence = message.sequence;
    const what = typeName(message.type);
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(sequence);
        reject(new RequestTimeout(timeout, what));
        if (this.socket === socket) this.drop(socket, 4000, `no reply to ${what} within ${timeout} s`);
      }, timeout * 1000);
      this.pending.set(sequence, { resolve, reject, timer, what });
      socket.send(data);
    });
  }

  /** Send without waiting for a reply (close, last metrics); false when no socket is open. */
  send(message) {
    if (!this.socket) return false;
    this.socket.send(this.pack(message));
    return true;
  }

  /** Close the socket; pending requests reject with ConnectionClosed(code, reason). */
  close(code = 1000, reason = 'client closed') {
    if (this.socket) this.drop(this.socket, code, reason);
  }

  pack(message) {
    message.sequence = this.nextSequence;
    this.nextSequence = (this.nextSequence + 1n) & U64_MASK;
    return packEnvelope(encode(message, this.limits));
  }

  connect() {
    const socket = new this.WebSocket(this.url, this.protocols);
    socket.binaryType = 'arraybuffer';
    return new Promise((resolve, reject) => {
      let opened = false;
      let failed = false;
      const timer = setTimeout(() => {
        failed = true;
        reject(new ConnectionClosed(1006, `no handshake within ${this.openTimeout} s`, 'open'));
        socket.close();
      }, this.openTimeout * 1000);
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        if (socket.protocol !== SUBPROTOCOL) {
          socket.close(1000, 'wrong subprotocol');
          reject(new ProtocolError('websocket.protocol', SUBPROTOCOL, socket.protocol || 'none'));
          return;
        }
        opened = true;
        this.socket = socket;
        this.generation += 1;
        resolve();
      });
      // Node 20's WebSocket fires only 'error' (no 'close') when a connection fails: treat it as one
      socket.addEventListener('error', () => {
        clearTimeout(timer);
        if (!opened && !failed) {
          failed = true;
          reject(new ConnectionClosed(1006, 'connection failed', 'open'));
          if (socket.readyState < 2) socket.close();
        } else if (opened && this.socket === socket) this.drop(socket, 1006, 'connection error');
      });
      socket.addEventListener('close', (event) => {
        clearTimeout(timer);
        if (!opened) reject(new ConnectionClosed(event.code, event.reason, 'open'));
        else if (this.socket === socket) this.drop(socket, event.code, event.reason, false);
      });
      socket.addEventListener('message', (event) => {
        if (this.socket === socket) this.receive(socket, event.data);
      });
    });
  }

  receive(socket, data) {
    if (typeof data === 'string') {
      this.failAll(new ProtocolError('websocket.message', 'a binary message', 'a text message'));
      this.drop(socket, 4003, 'text message');
      return;
    }
    let frames = null;
    let message;
    try {
      frames = unpackEnvelope(data, this.limits);
      message = decode(frames, this.limits);
    } catch (error) {
      const entry = frames && this.pending.get(salvageSequence(frames[0]));
      if (entry) this.settle(salvageSequence(frames[0]), entry.reject, error);
      else this.failAll(error);
      return;
    }
    const entry = this.pending.get(message.sequence);
    if (entry) this.settle(message.sequence, entry.resolve, message);
  }

  settle(sequence, how, value) {
    clearTimeout(this.pending.get(sequence).timer);
    this.pending.delete(sequence);
    how(value);
  }

  failAll(error) {
    for (const [sequence, entry] of [...this.pending]) this.settle(sequence, entry.reject, error);
  }

  drop(socket, code, reason, closeIt = true) {
    this.socket = null;
    for (const [sequence, entry] of [...this.pending]) {
      this.settle(sequence, entry.reject, new ConnectionClosed(code, reason, entry.what));
    }
    if (closeIt) socket.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
  }
}

/** The sequence of a refused reply when its frame 0 is a header (to reject just that request). */
function salvageSequence(frame) {
  if (!frame || frame.byteLength !== HEADER_SIZE || !MAGIC.every((b, i) => frame[i] === b)) return null;
  return new DataView(frame.buffer, frame.byteOffset, HEADER_SIZE).getBigUint64(8, true);
}
