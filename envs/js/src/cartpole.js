/**
 * gymnasium's CartPole-v1 in JavaScript: the same constants and equations (Euler integration,
 * float64 state, float32 observations), termination at |x| > 2.4 or |theta| > 12 degrees,
 * truncation at 500 steps (gymnasium.make's TimeLimit), reward 1 per step, reset uniform in
 * [-0.05, 0.05) from a seedable PRNG (not numpy's stream: same seed, same episodes in JS only).
 * `VectorCartPole` steps N of them in one Float32Array, resetting like gymnasium's vector envs
 * in NEXT_STEP mode; `runCartPole` trains a block of them through the gateway.
 * @module cartpole
 */
import { DType } from './constants.js';
import { BlockProxy } from './block.js';
import { mulberry32, randomSeed } from './random.js';
import { VectorRunner } from './runner.js';
import { Tensor } from './tensor.js';

export const GRAVITY = 9.8;
export const MASSCART = 1.0;
export const MASSPOLE = 0.1;
export const TOTAL_MASS = MASSPOLE + MASSCART;
export const LENGTH = 0.5; // half the pole's length
export const POLEMASS_LENGTH = MASSPOLE * LENGTH;
export const FORCE_MAG = 10.0;
export const TAU = 0.02;
export const THETA_THRESHOLD_RADIANS = (12 * 2 * Math.PI) / 360;
export const X_THRESHOLD = 2.4;
export const MAX_EPISODE_STEPS = 500;

/**
 * One Euler step of the float64 state at `state[at .. at+3]` (x, x_dot, theta, theta_dot), in
 * place, with action 0 (push left) or 1 (push right); returns whether the episode terminated.
 */
export function cartpoleStep(state, at, action) {
  const x = state[at];
  const xDot = state[at + 1];
  const theta = state[at + 2];
  const thetaDot = state[at + 3];
  const force = action === 1 ? FORCE_MAG : -FORCE_MAG;
  const costheta = Math.cos(theta);
  const sintheta = Math.sin(theta);
  const temp = (force + POLEMASS_LENGTH * (thetaDot * thetaDot) * sintheta) / TOTAL_MASS;
  const thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - (MASSPOLE * (costheta * costheta)) / TOTAL_MASS));
  const xacc = temp - (POLEMASS_LENGTH * thetaacc * costheta) / TOTAL_MASS;
  const nx = x + TAU * xDot;
  const ntheta = theta + TAU * thetaDot;
  state[at] = nx;
  state[at + 1] = xDot + TAU * xacc;
  state[at + 2] = ntheta;
  state[at + 3] = thetaDot + TAU * thetaacc;
  return nx < -X_THRESHOLD || nx > X_THRESHOLD || ntheta < -THETA_THRESHOLD_RADIANS || ntheta > THETA_THRESHOLD_RADIANS;
}

/** One CartPole-v1 (with its 500-step time limit). */
export class CartPole {
  constructor({ seed = null } = {}) {
    this.state = new Float64Array(4);
    this.observation = new Float32Array(4);
    this.random = mulberry32(seed ?? randomSeed());
    this.steps = 0;
  }

  /** Start an episode; `seed` reseeds the PRNG. Returns the observation (float32, 4). */
  reset({ seed = null } = {}) {
    if (seed !== null) this.random = mulberry32(seed);
    for (let k = 0; k < 4; k += 1) this.state[k] = -0.05 + 0.1 * this.random();
    this.steps = 0;
    this.observation.set(this.state);
    return this.observation;
  }

  /** Apply action 0 or 1: {observation, reward, terminated, truncated}. */
  step(action) {
    const terminated = cartpoleStep(this.state, 0, Number(action));
    this.steps += 1;
    this.observation.set(this.state);
    return { observation: this.observation, reward: 1.0, terminated, truncated: this.steps >= MAX_EPISODE_STEPS };
  }
}

/**
 * N CartPoles in flat arrays, auto-reset in gymnasium's NEXT_STEP mode: the step after an
 * episode ended resets that environment (its action ignored; reward 0, flags 0, autoreset 1).
 */
export class VectorCartPole {
  /** @param {{n: number, seed?: number|null}} options environment i is seeded with seed + i */
  constructor({ n, seed = null }) {
    this.n = n;
    this.observationShape = [4];
    this.seed = seed;
    this.envs = Array.from({ length: n }, (_, i) => new CartPole({ seed: seed === null ? null : seed + i }));
    this.observations = new Float32Array(4 * n);
    this.rewards = new Float32Array(n);
    this.terminated = new Uint8Array(n);
    this.truncated = new Uint8Array(n);
    this.autoreset = new Uint8Array(n);
  }

  /** Reset every environment; returns the observations (float32, n x 4). */
  reset() {
    this.envs.forEach((env, i) => this.observations.set(env.reset(), 4 * i));
    this.terminated.fill(0);
    this.truncated.fill(0);
    this.autoreset.fill(0);
    return this.observations;
  }

  /**
   * Step every environment with `actions` (n numbers, or a Tensor (n,) / (n, 1) of actions).
   * Returns {observations, rewards, terminated, truncated, autoreset}, arrays reused per step.
   */
  step(actions) {
    const pick = actions instanceof Tensor ? (i) => Number(actions.row(i)[0]) : (i) => Number(actions[i]);
    for (let i = 0; i < this.n; i += 1) {
      const env = this.envs[i];
      if (this.terminated[i] || this.truncated[i]) {
        this.observations.set(env.reset(), 4 * i);
        [this.rewards[i], this.terminated[i], this.truncated[i], this.autoreset[i]] = [0, 0, 0, 1];
        continue;
      }
      const out = env.step(pick(i));
      this.observations.set(out.observation, 4 * i);
      this.rewards[i] = out.reward;
      this.terminated[i] = out.terminated ? 1 : 0;
      this.truncated[i] = out.truncated ? 1 : 0;
      this.autoreset[i] = 0;
    }
    const { observations, rewards, terminated, truncated, autoreset } = this;
    return { observations, rewards, terminated, truncated, autoreset };
  }

  /** The observations as the state Tensor of an update (n, 4), sharing the array. */
  stateTensor() {
    return new Tensor(DType.FLOAT32, [this.n, 4], this.observations);
  }
}

/**
 * Train a block of `n` CartPoles through the gateway at `url` until `steps` environment steps,
 * `seconds` or `signal` (an AbortSignal). Resolves to the summary
 * {episodes, steps, meanReward100, seconds, restarts}.
 * @param {object} options
 * @param {string} options.url
 * @param {number} [options.n] environments, one block (16)
 * @param {string} [options.token]
 * @param {typeof WebSocket} [options.WebSocket]
 * @param {number} [options.steps] stop after this many environment steps
 * @param {number} [options.seconds] stop after this many seconds
 * @param {AbortSignal} [options.signal]
 * @param {boolean} [options.exploit] act only, no training
 * @param {number} [options.seed] environment i is seeded with seed + i
 * @param {(reward: number, env: number) => void} [options.onEpisode] each finished episode
 * @param {(summary: object) => void} [options.onReport] every `reportEvery` seconds
 * @param {number} [options.reportEvery] seconds between reports (1)
 * @param {object} [options.proxyOptions] more BlockProxy options (requestTimeout, logger...)
 */
export async function runCartPole({
  url,
  n = 16,
  token = null,
  WebSocket = globalThis.WebSocket,
  steps = Infinity,
  seconds = Infinity,
  signal = null,
  exploit = false,
  seed = null,
  onEpisode = null,
  onReport = null,
  reportEvery = 1,
  proxyOptions = {},
}) {
  const proxy = new BlockProxy({ url, n, token, WebSocket, ...proxyOptions });
  const runner = new VectorRunner(proxy, new VectorCartPole({ n, seed }), { exploit, onEpisode });
  const started = performance.now() / 1000;
  let lastReport = started;
  const summary = () => ({ ...runner.summary(), seconds: performance.now() / 1000 - started });
  await runner.run({
    until: () => {
      const now = performance.now() / 1000;
      if (onReport && now - lastReport >= reportEvery) {
        lastReport = now;
        onReport(summary());
      }
      return runner.steps >= steps || now - started >= seconds || Boolean(signal?.aborted);
    },
  });
  return summary();
}
