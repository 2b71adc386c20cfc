/**
 * @relaax-zmq/client: the RLX v1 client for browsers and Node 20+ (ES modules, no dependencies).
 * docs/js_client.md describes the API; docs/protocol.md the wire format.
 * @module index
 */
export {
  DType,
  EpisodeFlag,
  ErrorCode,
  Flag,
  MessageType,
  Role,
  SUPPORTED_VERSIONS,
  VERSION,
  errorCodeName,
  roleName,
  typeName,
} from './constants.js';
export { AgentError, ConfigError, ConnectionClosed, EpisodeRestart, ProtocolError, RequestTimeout, RlxError } from './errors.js';
export { DTYPES } from './dtypes.js';
export { decodeFloat16, encodeFloat16, float16ToNumber, numberToFloat16 } from './float16.js';
export { Tensor } from './tensor.js';
export { Message } from './message.js';
export { DEFAULT_LIMITS, makeLimits } from './limits.js';
export { decode, encode } from './codec.js';
export { maxFrames, pad8, packEnvelope, unpackEnvelope } from './envelope.js';
export * as messages from './messages.js';
export { Backoff } from './backoff.js';
export { MetricsBuffer } from './metrics.js';
export { SUBPROTOCOL, TOKEN_PREFIX, WebSocketTransport, subprotocols } from './transport.js';
export { ACTION_LATENCY_CLIENT_MS, BlockProxy, PERMANENT_CLOSE_CODES, isConnectionLoss } from './block.js';
export { AgentProxy, actionOf } from './proxy.js';
export { ENV_STEPS, EPISODES, EPISODE_LENGTH, EPISODE_REWARD, VectorRunner } from './runner.js';
export { CartPole, VectorCartPole, cartpoleStep, runCartPole } from './cartpole.js';
export { mulberry32 } from './random.js';
