/**
 * `BlockProxy`: a block of N sessions on the exchange, one message per step for all N
 * (relaax_zmq/client/block.py and vector.py). The rules, as in Python:
 *
 * - every ERROR reply throws AgentError(code, server text);
 * - a reply with the RESTART flag throws EpisodeRestart; an error with RESTART or UNKNOWN_SESSION
 *   first opens a new block, then throws EpisodeRestart;
 * - a BUSY init (or an init without reply, or a lost connection) is retried with jittered
 *   backoff until `retryDeadline`, then its error is thrown;
 * - a request without reply, or a lost connection, reconnects, resumes the block (init with its
 *   session id) and throws EpisodeRestart.
 *
 * After EpisodeRestart the caller resets its environments; the next update carries no rewards.
 * Await each call before the next: a block has one request in flight.
 * @module block
 */
import { ErrorCode, Flag, MessageType, Role, typeName } from './constants.js';
import { AgentError, ConnectionClosed, EpisodeRestart, ProtocolError, RequestTimeout } from './errors.js';
import { Backoff } from './backoff.js';
import { DEFAULT_LIMITS } from './limits.js';
import { Message } from './message.js';
import * as messages from './messages.js';
import { MetricsBuffer } from './metrics.js';
import { Tensor } from './tensor.js';
import { WebSocketTransport } from './transport.js';

/** Scalar metric: milliseconds from an update's send to its action, averaged per flush. */
export const ACTION_LATENCY_CLIENT_MS = 'action_latency_client_ms';
/** Close codes after which reconnecting cannot help (malformed, text, policy, too big). */
export const PERMANENT_CLOSE_CODES = Object.freeze([1002, 1003, 1008, 1009]);

const now = () => performance.now() / 1000;

/** True for a failure a reconnect may cure: a timeout or a close other than a permanent one. */
export function isConnectionLoss(error) {
  return error instanceof RequestTimeout || (error instanceof ConnectionClosed && !PERMANENT_CLOSE_CODES.includes(error.code));
}

export class BlockProxy {
  /**
   * @param {object} options
   * @param {string} [options.url] the gateway, `ws://127.0.0.1:7800/rlx` (unless `transport`)
   * @param {number} [options.n] sessions in the block (1)
   * @param {string} [options.token] access token of the gateway
   * @param {typeof WebSocket} [options.WebSocket] constructor (default globalThis.WebSocket)
   * @param {number} [options.requestTimeout] seconds to wait for a reply before reconnecting (10)
   * @param {number} [options.backoffInitial] first retry delay of a refused init, seconds (0.1)
   * @param {number} [options.backoffMax] largest retry delay, seconds (10)
   * @param {number} [options.retryDeadline] seconds an init keeps retrying before it gives up (60)
   * @param {object} [options.limits] protocol limits (limits.makeLimits)
   * @param {Backoff} [options.backoff] a ready Backoff (tests inject one with a fake sleep)
   * @param {object} [options.transport] a ready transport instead of a WebSocketTransport
   * @param {{warn: Function, info: Function}} [options.logger] where to report restarts (none)
   */
  constructor({
    url,
    n = 1,
    token = null,
    WebSocket = globalThis.WebSocket,
    requestTimeout = 10,
    backoffInitial = 0.1,
    backoffMax = 10,
    retryDeadline = 60,
    limits = DEFAULT_LIMITS,
    backoff = null,
    transport = null,
    logger = null,
  } = {}) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a block has at least one session, got ${n}`);
    this.n = n;
    this.requestTimeout = requestTimeout;
    this.retryDeadline = retryDeadline;
    this.transport = transport ?? new WebSocketTransport({ url, token, WebSocket, limits });
    this.backoff = backoff ?? new Backoff({ initial: backoffInitial, maximum: backoffMax });
    this.metrics = new MetricsBuffer((scalars, histograms) => this.sendMetrics(scalars, histograms));
    this.logger = logger;
    this.restarts = 0; // EpisodeRestart thrown so far
    this.block = null; // first session id (bigint) of the block, null before init
    this.blockGeneration = -1; // the transport's generation when the block was granted
    this.epoch = 0; // bumped by close: calls in flight then fail instead of reconnecting
    this.exploitMode = false;
  }

  /** First session id of the block (a bigint), null before init. */
  get sessionId() {
    return this.block;
  }

  get exploit() {
    return this.exploitMode;
  }

  /** Open the WebSocket (init does it when needed). */
  async connect() {
    await this.transport.open();
  }

  /** Ask for a new block; resolves to its first session id (a bigint). BUSY is retried. */
  async init({ exploit = false } = {}) {
    if (this.block !== null) this.sendClose();
    this.exploitMode = exploit;
    return this.openBlock(0n);
  }

  /**
   * One step of every session; resolves to the actions, a Tensor of shape (n, ...).
   * @param {object} step
   * @param {ArrayLike<number>|null} [step.rewards] n rewards (Float32Array/Float64Array sent as
   *   they are; null on the first step of every episode: NaN in a row starting an episode)
   * @param {Tensor|ArrayBufferView|null} [step.states] (n, ...): a Tensor, or a typed array of
   *   n rows (shape (n, length / n))
   * @param {ArrayLike<boolean|number>} [step.terminal] n flags (all false)
   * @param {ArrayLike<boolean|number>} [step.truncated] n flags (all false)
   */
  async update({ rewards = null, states = null, terminal = null, truncated = null } = {}) {
    const zeros = new Uint8Array(this.n);
    const ends = messages.episodeFlags(this.flags(terminal ?? zeros, 'terminal'), this.flags(truncated ?? zeros, 'truncated'));
    return this.step(this.rewardTensor(rewards), this.stateTensor(states, true), ends);
  }

  /** Flush the metrics and end the block's episodes (never throws EpisodeRestart). */
  async reset() {
    try {
      await this.metrics.flush();
      await this.call((sid) => messages.simple(MessageType.RESET, sid, this.n), MessageType.DONE);
    } catch (error) {
      if (!(error instanceof EpisodeRestart)) throw error;
    }
  }

  /** Tell the broker the block is alive (during long pauses between steps). */
  async heartbeat() {
    await this.call((sid) => messages.simple(MessageType.HEARTBEAT, sid, this.n), MessageType.HEARTBEAT);
  }

  /** Send what metrics wait and `close` without waiting for replies; close the WebSocket. */
  close() {
    if (this.transport.isOpen && this.block !== null) {
      if (this.metrics.size) {
        const { scalars, histograms } = this.metrics.take();
        this.transport.send(messages.metrics(this.block, scalars, histograms, { sessionCount: this.n }));
      }
      this.sendClose();
    }
    this.block = null;
    this.epoch += 1;
    this.transport.close(1000, 'client closed');
  }

  // -- shared with AgentProxy ------------------------------------------------------------------

  /** One update: reward and state Tensors or null, `ends` header flags or an episode_flags Tensor. */
  async step(reward, state, ends) {
    const tensors = new Map();
    if (reward) tensors.set(Role.REWARD, reward);
    if (state) tensors.set(Role.STATE, state);
    let flags = 0;
    let ended;
    if (ends instanceof Tensor) {
      tensors.set(Role.EPISODE_FLAGS, ends);
      ended = ends.data.some((v) => v !== 0);
    } else {
      [flags, ended] = [ends, ends !== 0];
    }
    const started = performance.now();
    const reply = await this.call(
      (sessionId) => new Message(MessageType.UPDATE, { flags, sessionId, sessionCount: this.n, tensors }),
      MessageType.ACTION,
    );
    this.metrics.mean(ACTION_LATENCY_CLIENT_MS, performance.now() - started);
    const actions = reply.tensor(Role.ACTION);
    if (actions.shape[0] !== this.n) throw new ProtocolError('action', `${this.n} actions`, `shape (${actions.shape})`);
    if (ended) await this.metrics.flush();
    return actions;
  }

  rewardTensor(rewards) {
    if (rewards === null || rewards === undefined) return null;
    const data = rewards instanceof Float32Array || rewards instanceof Float64Array ? rewards : Float32Array.from(rewards, Number);
    if (data.length !== this.n) throw new RangeError(`expected ${this.n} rewards, got ${data.length}`);
    return Tensor.of(data, [this.n]);
  }

  /** (n, ...) states from a Tensor or a typed array; `batched` false adds the leading 1. */
  stateTensor(states, batched) {
    if (states === null || states === undefined) return null;
    let tensor;
    if (states instanceof Tensor) tensor = batched ? states : new Tensor(states.dtype, [1, ...states.shape], states.data);
    else {
      const data = ArrayBuffer.isView(states) ? states : Float32Array.from(states, Number);
      if (batched && data.length % this.n) throw new RangeError(`expected n = ${this.n} rows of states, got ${data.length} values`);
      tensor = Tensor.of(data, batched ? [this.n, data.length / this.n] : [1, data.length]);
    }
    if (tensor.ndim === 0 || tensor.shape[0] !== this.n) {
      throw new RangeError(`expected states of shape (${this.n}, ...), got (${tensor.shape})`);
    }
    return tensor;
  }

  flags(values, name) {
    if (values.length !== this.n) throw new RangeError(`expected ${this.n} ${name} flags, got ${values.length}`);
    return values;
  }

  // -- internals -------------------------------------------------------------------------------

  sendClose() {
    this.transport.send(messages.simple(MessageType.CLOSE, this.block, this.n));
    this.block = null;
  }

  async sendMetrics(scalars, histograms) {
    await this.call((sid) => messages.metrics(sid, scalars, histograms, { sessionCount: this.n }), MessageType.DONE);
  }

  /** One request of the block, with the error, restart and reconnect rules applied. */
  async call(build, expect) {
    if (this.block === null) await this.init({ exploit: this.exploitMode });
    if (!this.transport.isOpen || this.transport.generation !== this.blockGeneration) {
      await this.restart('the connection was lost', true);
    }
    const epoch = this.epoch;
    let reply;
    try {
      reply = await this.transport.request(build(this.block), this.requestTimeout);
    } catch (error) {
      if (isConnectionLoss(error) && epoch === this.epoch) await this.restart(error.message, true);
      throw error;
    }
    if (reply.type === MessageType.ERROR) {
      const { code, text } = messages.readError(reply);
      if (code === ErrorCode.UNKNOWN_SESSION || reply.flags & Flag.RESTART) {
        await this.restart(new AgentError(code, text).message, false);
      }
      throw new AgentError(code, text);
    }
    if (reply.flags & Flag.RESTART) {
      this.restarts += 1;
      throw new EpisodeRestart("the server restarted the block's episodes");
    }
    if (reply.type !== expect) throw new ProtocolError('reply.type', typeName(expect), typeName(reply.type));
    return reply;
  }

  /** Resume the block (or open a new one), then throw EpisodeRestart. */
  async restart(reason, resume) {
    const old = this.block;
    this.logger?.warn(`block ${old}: ${reason}; ${resume ? 'resuming it' : 'opening a new one'}`);
    this.block = null;
    await this.openBlock(resume && old !== null ? old : 0n);
    this.restarts += 1;
    throw new EpisodeRestart(reason);
  }

  /** init (0n: a new block, else resume that one), retrying BUSY and lost connections. */
  async openBlock(sessionId) {
    const deadline = now() + this.retryDeadline;
    this.backoff.reset();
    for (;;) {
      let failure;
      let reply = null;
      try {
        reply = await this.transport.request(messages.init(this.n, { exploit: this.exploitMode, sessionId }), this.requestTimeout);
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        failure = error;
      }
      if (reply?.type === MessageType.READY) return this.granted(reply);
      if (reply && reply.type !== MessageType.ERROR) throw new ProtocolError('reply.type', 'ready or error', typeName(reply.type));
      if (reply) {
        const { code, text } = messages.readError(reply);
        failure = new AgentError(code, text);
        if (code !== ErrorCode.BUSY) throw failure;
      }
      const left = deadline - now();
      if (left <= 0) throw failure;
      const delay = await this.backoff.wait(left);
      this.logger?.info(`init: ${failure.message}; retried after ${delay.toFixed(3)} s`);
    }
  }

  granted(reply) {
    if (reply.sessionCount !== this.n || reply.sessionId === 0n) {
      throw new ProtocolError('ready', `a block of ${this.n} sessions`, `${reply.sessionId}x${reply.sessionCount}`);
    }
    this.block = reply.sessionId;
    this.blockGeneration = this.transport.generation;
    return reply.sessionId;
  }
}

