/**
 * `VectorRunner`: a vector environment driven as one block of sessions, with the conventions of
 * envs/vector_runner.py (and vector_env_runner.py's NEXT_STEP mode):
 *
 * - the step that ends environment i's episode is sent with its reward, final observation and
 *   terminal/truncated flag in row i; the action returned for that row is discarded;
 * - on the next update row i holds the reset observation of the new episode, flags 0, reward NaN;
 * - the first update of the block, and the first after an EpisodeRestart (which resets every
 *   environment), carries no rewards at all;
 * - each finished episode adds `episode_reward` and `episode_length` (means per flush), and a step
 *   on which episodes ended sets `env_steps` (steps since the last report) and `episodes`.
 *
 * The environment: `n`, `observationShape`, `reset()` -> observations, `step(actions Tensor)` ->
 * {rewards, terminated, truncated, autoreset}, `stateTensor()` -> the (n, ...) observations.
 * @module runner
 */
import { EpisodeRestart } from './errors.js';

export const EPISODE_REWARD = 'episode_reward';
export const EPISODE_LENGTH = 'episode_length';
export const ENV_STEPS = 'env_steps';
export const EPISODES = 'episodes';

export class VectorRunner {
  /**
   * @param {import('./block.js').BlockProxy} proxy a block of env.n sessions
   * @param {object} env the vector environment (module doc)
   * @param {{exploit?: boolean, onEpisode?: (reward: number, env: number) => void}} [options]
   */
  constructor(proxy, env, { exploit = false, onEpisode = null } = {}) {
    if (proxy.n !== env.n) throw new RangeError(`${env.n} environments for a block of ${proxy.n} sessions`);
    this.proxy = proxy;
    this.env = env;
    this.exploit = exploit;
    this.onEpisode = onEpisode;
    this.steps = 0; // environment steps taken (all environments)
    this.episodes = 0; // episodes reported
    this.recent = []; // the last 100 reported episode rewards, oldest first
    this.restarts = 0; // EpisodeRestart received
    this.stopped = false;
    this.reported = 0; // `steps` when env_steps was last sent
  }

  /** Ask `run` to stop before its next step. */
  stop() {
    this.stopped = true;
  }

  /** {episodes, steps, meanReward100, restarts}: meanReward100 is the mean of the last 100 (null before one). */
  summary() {
    const last = this.recent;
    const mean = last.length ? last.reduce((a, b) => a + b, 0) / last.length : null;
    return { episodes: this.episodes, steps: this.steps, meanReward100: mean, restarts: this.restarts };
  }

  /** Run until `until(runner)` is true or `stop`; the block is closed at the end. */
  async run({ until = () => false } = {}) {
    const done = () => this.stopped || until(this);
    try {
      await this.proxy.init({ exploit: this.exploit });
      while (!done()) {
        try {
          await this.episodesUntil(done);
        } catch (error) {
          if (!(error instanceof EpisodeRestart)) throw error;
          this.restarts += 1;
        }
      }
    } finally {
      this.proxy.close();
    }
    return this.summary();
  }

  /** Fresh episodes for every environment, stepped until done (or an EpisodeRestart). */
  async episodesUntil(done) {
    const { n } = this.env;
    const metrics = this.proxy.metrics;
    this.env.reset();
    const states = this.env.stateTensor();
    const totals = new Float64Array(n);
    const lengths = new Uint32Array(n);
    let rewards = null;
    let terminal = new Uint8Array(n);
    let truncated = new Uint8Array(n);
    while (!done()) {
      const actions = await this.proxy.update({ rewards, states, terminal, truncated });
      const out = this.env.step(actions);
      rewards = Float32Array.from(out.rewards);
      terminal = out.terminated.slice();
      truncated = out.truncated.slice();
      let reported = 0;
      for (let i = 0; i < n; i += 1) {
        if (out.autoreset[i]) {
          rewards[i] = NaN;
          totals[i] = 0;
          lengths[i] = 0;
          continue;
        }
        this.steps += 1;
        totals[i] += out.rewards[i];
        lengths[i] += 1;
        if (terminal[i] || truncated[i]) {
          metrics.mean(EPISODE_REWARD, totals[i]);
          metrics.mean(EPISODE_LENGTH, lengths[i]);
          this.recent.push(totals[i]);
          if (this.recent.length > 100) this.recent.shift();
          this.episodes += 1;
          reported += 1;
          this.onEpisode?.(totals[i], i);
        }
      }
      if (reported) {
        metrics.scalar(ENV_STEPS, this.steps - this.reported);
        metrics.scalar(EPISODES, reported);
        this.reported = this.steps;
      }
    }
  }
}
