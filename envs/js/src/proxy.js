/**
 * `AgentProxy`: a client of one session (a block of N = 1), as relaax_zmq/client/proxy.py.
 * @module proxy
 */
import { Flag } from './constants.js';
import { BlockProxy } from './block.js';
import { Tensor } from './tensor.js';

export class AgentProxy extends BlockProxy {
  /** @param {object} options BlockProxy's options, without `n` */
  constructor(options = {}) {
    super({ ...options, n: 1 });
  }

  /**
   * One step; resolves to this session's action: a number for actions of shape (1,)
   * (int64/uint64 converted with Number), else a Tensor of row 0's shape (a view), as Python's actions[0].
   * @param {object} step
   * @param {number|null} [step.reward] the previous action's reward (null on an episode's first step)
   * @param {Tensor|ArrayLike<number>|null} [step.state] the observation (plain arrays go as float32)
   * @param {boolean} [step.terminal]
   * @param {boolean} [step.truncated] a terminal/truncated update also flushes the metrics
   */
  async update({ reward = null, state = null, terminal = false, truncated = false } = {}) {
    const ends = (terminal ? Flag.TERMINAL : 0) | (truncated ? Flag.TRUNCATED : 0);
    const rewards = reward === null || reward === undefined ? null : [reward];
    const actions = await this.step(this.rewardTensor(rewards), this.stateTensor(state, false), ends);
    return actionOf(actions);
  }
}

/** Row 0 of a block's actions: a number when it holds one element, else a Tensor view. */
export function actionOf(actions) {
  if (actions.ndim === 1) return Number(actions.values()[0]);
  return new Tensor(actions.dtype, actions.shape.slice(1), actions.row(0));
}
