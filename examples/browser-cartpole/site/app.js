/**
 * CartPole trained in the browser: N environments of envs/js's VectorCartPole stepped as one
 * block of sessions through the gateway this page came from (ws(s)://host/rlx), as fast as the
 * round trips allow (train) or at 50 steps a second with the trained policy (exploit).
 *
 * Query: n (environments, 32), token (the gateway's access token), exploit (1: start in exploit
 * mode), seed (environment i is seeded with seed + i), fps (exploit speed, 50), path (/rlx).
 *
 * `window.relaax` holds the live figures (README.md): mode, state, n, steps, stepsPerSecond,
 * episodes, meanReward (last 100 episodes of this mode), lastReward, restarts, connections,
 * error, url.
 * @module app
 */
import { BlockProxy, VectorCartPole, VectorRunner } from '/client/index.js';
import { drawCurve, drawMain, drawThumbnails } from './draw.js';

const query = new URLSearchParams(location.search);

function integer(name, fallback, low, high) {
  const value = Number(query.get(name) ?? fallback);
  return Number.isInteger(value) ? Math.min(high, Math.max(low, value)) : fallback;
}

const yes = (value) => value !== null && !['0', 'false', 'no', 'off'].includes(value.toLowerCase());
const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';

const settings = {
  n: integer('n', 32, 1, 1024),
  token: query.get('token') || null,
  seed: query.has('seed') ? integer('seed', 0, 0, 2 ** 31) : null,
  fps: integer('fps', 50, 1, 1000),
  url: `${wsScheme}//${location.host}${query.get('path') ?? '/rlx'}`,
};
const RETRY_SECONDS = 3;
const CURVE_POINTS = 600;
const THUMB_COLUMNS = 8; // thumbnails of 90 x 45 pixels, at most 8 rows of them
const THUMB_HEIGHT = 45;
const MAX_THUMB_ROWS = 8;

/** The live figures (module doc); also read by tests/test_browser_cartpole.py. */
const figures = {
  mode: yes(query.get('exploit')) ? 'exploit' : 'train',
  state: 'starting', // connecting, running, reconnecting, retrying (after an error), stopped
  n: settings.n,
  steps: 0,
  stepsPerSecond: 0,
  episodes: 0,
  meanReward: null,
  lastReward: null,
  restarts: 0,
  connections: 0,
  error: null,
  url: settings.url,
};
window.relaax = figures;

const $ = (id) => document.getElementById(id);
let run = null; // the current {runner, proxy, env, generation}
let generation = 0;
let curve = [];

/** The proxy the runner drives: the block, paced to `interval` seconds a step (0: no pacing). */
function paced(proxy, interval, onStep) {
  let next = 0;
  return {
    n: proxy.n,
    metrics: proxy.metrics,
    async init(options) {
      const id = await proxy.init(options);
      figures.connections += 1;
      return id;
    },
    async update(step) {
      if (interval > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        next = Math.max(next, performance.now() - 1000 * interval) + 1000 * interval;
      }
      const actions = await proxy.update(step);
      onStep();
      return actions;
    },
    close: () => proxy.close(),
  };
}

/** Start (or restart) stepping in `mode`, ending the current run first. */
async function start(mode) {
  const mine = (generation += 1);
  if (run) {
    run.runner.stop();
    run.proxy.close(); // a call in flight fails now instead of finishing its retries
    await run.done.catch(() => {});
  }
  if (mine !== generation) return;
  figures.mode = mode;
  figures.state = 'connecting';
  figures.meanReward = null;
  figures.lastReward = null;
  const env = new VectorCartPole({ n: settings.n, seed: settings.seed });
  const reconnecting = (text) => {
    figures.state = 'reconnecting';
    figures.error = text;
  };
  const logger = { warn: reconnecting, info: reconnecting }; // a lost block, a refused init
  const proxy = new BlockProxy({ url: settings.url, n: settings.n, token: settings.token, retryDeadline: 30, logger });
  const base = { steps: figures.steps, episodes: figures.episodes, restarts: figures.restarts };
  const interval = mode === 'exploit' ? 1 / settings.fps : 0;
  let runner = null;
  const onStep = () => {
    figures.state = 'running';
    figures.error = null;
    figures.steps = base.steps + runner.steps;
    figures.restarts = base.restarts + runner.restarts;
  };
  const onEpisode = (reward) => {
    figures.episodes += 1;
    figures.lastReward = reward;
    figures.meanReward = runner.summary().meanReward100;
  };
  runner = new VectorRunner(paced(proxy, interval, onStep), env, { exploit: mode === 'exploit', onEpisode });
  const done = runner.run();
  run = { runner, proxy, env, done };
  setMode(mode);
  try {
    await done;
    if (mine === generation) figures.state = 'stopped';
  } catch (error) {
    if (mine !== generation) return; // ended by a mode switch
    figures.error = `${error.name}: ${error.message}`;
    figures.state = 'retrying';
    console.error(error);
    setTimeout(() => mine === generation && start(mode), RETRY_SECONDS * 1000);
  }
}

function setMode(mode) {
  const url = new URL(location.href);
  if (mode === 'exploit') url.searchParams.set('exploit', '1');
  else url.searchParams.delete('exploit');
  history.replaceState(null, '', url);
  $('toggle').textContent = mode === 'exploit' ? 'Back to training' : 'Watch the trained agent';
  document.body.dataset.mode = mode;
}

const format = (x, digits = 0) => (x === null ? '-' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function show() {
  $('mode').textContent = figures.mode === 'exploit' ? `exploit, ${settings.fps} steps/s` : 'train, full speed';
  $('state').textContent = figures.state;
  $('state').className = figures.state;
  $('envs').textContent = String(figures.n);
  $('steps').textContent = format(figures.steps);
  $('rate').textContent = format(figures.stepsPerSecond);
  $('episodes').textContent = format(figures.episodes);
  $('mean').textContent = format(figures.meanReward, 1);
  $('last').textContent = format(figures.lastReward);
  $('restarts').textContent = String(figures.restarts);
  $('error').textContent = figures.error ?? '';
}

function frame() {
  if (run) {
    drawMain($('main'), run.env);
    const shown = drawThumbnails($('thumbs'), run.env);
    $('more').textContent = shown < settings.n - 1 ? `+ ${settings.n - 1 - shown} more environments not drawn` : '';
  }
  drawCurve($('curve'), curve);
  show();
  requestAnimationFrame(frame);
}

// steps/s over the last second and the curve's points, on a timer (not tied to frames)
let last = { t: performance.now(), steps: 0 };
setInterval(() => {
  const now = performance.now();
  figures.stepsPerSecond = Math.round((1000 * (figures.steps - last.steps)) / (now - last.t));
  last = { t: now, steps: figures.steps };
  if (figures.meanReward !== null) {
    curve.push({ t: now / 1000, mean: figures.meanReward, mode: figures.mode });
    if (curve.length > CURVE_POINTS) curve = curve.filter((_, i) => i % 2 === 0);
  }
  if (document.hidden) show(); // no animation frames in a hidden tab
}, 1000);

$('toggle').addEventListener('click', () => start(figures.mode === 'exploit' ? 'train' : 'exploit'));
$('url').textContent = settings.url;
$('thumbs').height = THUMB_HEIGHT * Math.max(1, Math.min(MAX_THUMB_ROWS, Math.ceil((settings.n - 1) / THUMB_COLUMNS)));
requestAnimationFrame(frame);
start(figures.mode);
