/**
 * Jittered exponential backoff (relaax_zmq/client/backoff.py): the nominal delay starts at
 * `initial` seconds and doubles after every retry up to `maximum`; each actual delay is uniform
 * in [nominal / 2, nominal], so that clients refused together do not retry together.
 * @module backoff
 */

/** Resolve after `seconds`. */
export const sleepSeconds = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

export class Backoff {
  /**
   * @param {object} [options]
   * @param {number} [options.initial] first nominal delay, seconds (0.1)
   * @param {number} [options.maximum] largest nominal delay, seconds (10)
   * @param {() => number} [options.random] uniform in [0, 1) (Math.random)
   * @param {(seconds: number) => Promise<void>} [options.sleep] how to wait (setTimeout)
   */
  constructor({ initial = 0.1, maximum = 10.0, random = Math.random, sleep = sleepSeconds } = {}) {
    if (!(initial > 0) || !(maximum >= initial)) {
      throw new RangeError(`expected 0 < initial <= maximum, got ${initial}, ${maximum}`);
    }
    this.initial = initial;
    this.maximum = maximum;
    this.random = random;
    this.sleep = sleep;
    this.nominal = initial;
  }

  /** Start again from `initial` (after a success). */
  reset() {
    this.nominal = this.initial;
  }

  /** The next delay, uniform in [nominal / 2, nominal]; then the nominal doubles. */
  nextDelay() {
    const nominal = this.nominal;
    this.nominal = Math.min(nominal * 2, this.maximum);
    return nominal / 2 + this.random() * (nominal / 2);
  }

  /** Wait the next delay (at most `limit` seconds); resolves to the seconds waited. */
  async wait(limit = Infinity) {
    const delay = Math.max(0, Math.min(this.nextDelay(), limit));
    await this.sleep(delay);
    return delay;
  }
}
