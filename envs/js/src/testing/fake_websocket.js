/**
 * An in-memory WebSocket and gateway for tests: `new FakeGateway(handler).WebSocket` is a
 * WebSocket constructor whose sockets talk to `handler` through the real envelope and codec.
 *
 * `handler(request, socket)` gets each decoded request and returns what the gateway does:
 * null (no reply), a Message (a reply; sequence 0n is replaced by the request's), or an array of
 * those and of `{close: code, reason}` (close the socket) and `{raw: data}` (send bytes or text).
 * Events are delivered asynchronously, as a real socket does.
 * @module testing/fake_websocket
 */
import { decode, encode } from '../codec.js';
import { packEnvelope, unpackEnvelope } from '../envelope.js';
import { SUBPROTOCOL } from '../transport.js';

const later = (fn) => setTimeout(fn, 0);

export class FakeGateway {
  /**
   * @param {(request: import('../message.js').Message, socket: FakeSocket) => any} handler
   * @param {object} [options]
   * @param {(url: string, protocols: string[]) => number|null} [options.refuse] a close code to
   *   refuse a handshake with (1006 is what a browser sees of HTTP 401/403), null to accept
   * @param {string} [options.protocol] the subprotocol the gateway selects ('rlx.v1')
   */
  constructor(handler, { refuse = () => null, protocol = SUBPROTOCOL } = {}) {
    this.handler = handler;
    this.refuse = refuse;
    this.protocol = protocol;
    this.sockets = []; // every socket made, in order
    this.requests = []; // every decoded request, in order
    const gateway = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url, protocols) {
        super(gateway, url, protocols);
      }
    };
  }
}

export class FakeSocket {
  constructor(gateway, url, protocols = []) {
    this.gateway = gateway;
    this.url = url;
    this.protocols = [].concat(protocols);
    this.binaryType = 'blob';
    this.protocol = '';
    this.readyState = 0;
    this.listeners = { open: [], message: [], close: [], error: [] };
    this.closedWith = null; // [code, reason] of the client's close()
    gateway.sockets.push(this);
    later(() => {
      const refusal = gateway.refuse(url, this.protocols);
      if (refusal !== null) {
        this.emit('error', {});
        this.finish(refusal, '');
      } else {
        this.protocol = gateway.protocol;
        this.readyState = 1;
        this.emit('open', {});
      }
    });
  }

  addEventListener(type, listener) {
    this.listeners[type].push(listener);
  }

  removeEventListener(type, listener) {
    this.listeners[type] = this.listeners[type].filter((l) => l !== listener);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
    if (this.binaryType !== 'arraybuffer') throw new Error(`binaryType ${this.binaryType}, not arraybuffer`);
    const request = decode(unpackEnvelope(data));
    this.gateway.requests.push(request);
    const result = this.gateway.handler(request, this);
    later(() => [].concat(result ?? []).forEach((item) => this.deliver(item, request)));
  }

  close(code = 1000, reason = '') {
    if (this.readyState >= 2) return;
    this.closedWith = [code, reason];
    this.readyState = 2;
    later(() => this.finish(code, reason));
  }

  /** Server side: close the connection with `code` and `reason`. */
  serverClose(code, reason = '') {
    if (this.readyState < 2) this.finish(code, reason);
  }

  deliver(item, request) {
    if (this.readyState !== 1) return;
    if (item.close !== undefined) this.serverClose(item.close, item.reason ?? '');
    else if (item.raw !== undefined) this.emit('message', { data: item.raw });
    else {
      const reply = item.sequence === 0n ? Object.assign(Object.create(Object.getPrototypeOf(item)), item, { sequence: request.sequence }) : item;
      this.emit('message', { data: packEnvelope(encode(reply)) });
    }
  }

  finish(code, reason) {
    this.readyState = 3;
    this.emit('close', { code, reason, wasClean: code === 1000 });
  }

  emit(type, event) {
    for (const listener of this.listeners[type]) listener(event);
  }
}
