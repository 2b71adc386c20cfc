#!/usr/bin/env node
// CartPole under Node, trained through the relaax-zmq WebSocket gateway.
//
//   node --experimental-websocket envs/js/examples/cartpole-node.mjs --url ws://127.0.0.1:7800/rlx \
//        [--token T] [--envs 16] [--seconds S] [--steps K] [--seed N] [--interval 1] [--exploit]
//
// Prints one JSON line per interval ({"episodes", "mean_reward_100", "steps", "seconds"}) and a
// final line with "final": true and "restarts". Exit status 0 on success, 1 on an error (its
// message as {"error": ...} on stderr), 2 on bad arguments.
import { parseArgs } from 'node:util';

import { runCartPole } from '../src/cartpole.js';

const USAGE = 'usage: cartpole-node.mjs --url ws://HOST:PORT/rlx [--token T] [--envs 16] [--seconds S] [--steps K] [--seed N] [--interval 1] [--exploit]';

function options() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      envs: { type: 'string', default: '16' },
      seconds: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      interval: { type: 'string', default: '1' },
      exploit: { type: 'boolean', default: false },
    },
  });
  const number = (name, value, integer) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name}: expected a ${integer ? 'non-negative integer' : 'number >= 0'}, got ${value}`);
    return n;
  };
  if (!values.url) throw new Error('--url is required');
  return {
    url: values.url,
    token: values.token ?? null,
    n: Math.max(1, number('envs', values.envs, true)),
    seconds: values.seconds === undefined ? Infinity : number('seconds', values.seconds, false),
    steps: values.steps === undefined ? Infinity : number('steps', values.steps, true),
    seed: values.seed === undefined ? null : number('seed', values.seed, true),
    reportEvery: number('interval', values.interval, false),
    exploit: values.exploit,
  };
}

const line = (summary, extra = {}) =>
  JSON.stringify({
    episodes: summary.episodes,
    mean_reward_100: summary.meanReward100,
    steps: summary.steps,
    seconds: Number(summary.seconds.toFixed(3)),
    ...extra,
  });

async function main() {
  let opts;
  try {
    opts = options();
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
  if (typeof globalThis.WebSocket !== 'function') {
    console.error('no global WebSocket: run node --experimental-websocket (Node 20/21) or Node 22+');
    return 2;
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    // an unreachable gateway fails within the run's time, not after the default 60 s of retries
    const proxyOptions = { retryDeadline: Math.min(60, opts.seconds) };
    const summary = await runCartPole({ ...opts, proxyOptions, signal: stop.signal, onReport: (s) => console.log(line(s)) });
    console.log(line(summary, { restarts: summary.restarts, final: true }));
    return 0;
  } catch (error) {
    console.error(JSON.stringify({ error: `${error.name}: ${error.message}` }));
    return 1;
  }
}

process.exitCode = await main();
