/**
 * Client-side metrics (relaax_zmq/client/metrics.py): buffered, then sent as one METRICS message.
 * A scalar set twice before a flush keeps its last value; `mean` values of one name are averaged
 * into one scalar; histogram values of one name accumulate. The proxy flushes on reset and after
 * an update that ends an episode, so recording a metric never costs a round trip.
 * @module metrics
 */
import { checkName } from './messages.js';

export class MetricsBuffer {
  /** @param {(scalars: Map<string, number>, histograms: Map<string, Float64Array>) => Promise<void>} send */
  constructor(send) {
    this.send = send;
    this.clear();
  }

  /** How many metrics (scalars, means and histograms) are waiting. */
  get size() {
    return this.scalars.size + this.means.size + this.histograms.size;
  }

  /** Record a scalar (the last value given before a flush wins). */
  scalar(name, value) {
    this.scalars.set(checkName(name), Number(value));
  }

  /** Record one value of a scalar sent as the mean of every value given before a flush. */
  mean(name, value) {
    const running = this.means.get(name) ?? { total: 0, count: 0 };
    running.total += Number(value);
    running.count += 1;
    this.means.set(checkName(name), running);
  }

  /** Record values of a histogram (values of one name accumulate). */
  histogram(name, values) {
    const list = this.histograms.get(checkName(name)) ?? [];
    list.push(...Array.from(values, Number));
    this.histograms.set(name, list);
  }

  /** Send everything waiting as one message (nothing when empty); the buffer is emptied first. */
  async flush() {
    if (this.size) {
      const { scalars, histograms } = this.take();
      await this.send(scalars, histograms);
    }
  }

  /** Everything waiting, as {scalars, histograms}; the buffer is left empty. */
  take() {
    const scalars = this.scalars;
    for (const [name, { total, count }] of this.means) scalars.set(name, total / count);
    const histograms = new Map([...this.histograms].map(([k, v]) => [k, Float64Array.from(v)]));
    this.clear();
    return { scalars, histograms };
  }

  /** Drop everything waiting. */
  clear() {
    this.scalars = new Map();
    this.means = new Map();
    this.histograms = new Map();
  }
}
