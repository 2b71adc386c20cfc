/**
 * Canvas drawings of the CartPole page: one environment large (track, cart, pole), the others
 * as thumbnails, and the curve of the mean episode reward. Pure functions of the state arrays
 * of envs/js's CartPole (x, x_dot, theta, theta_dot as float64).
 * @module draw
 */
import { LENGTH, MAX_EPISODE_STEPS, X_THRESHOLD } from '/client/cartpole.js';

const WORLD_WIDTH = 2 * X_THRESHOLD + 0.6; // metres shown: the track and a margin
const COLORS = { sky: '#f7f7f2', track: '#444', cart: '#2b4c7e', pole: '#c8733a', axle: '#7f7f7f', edge: '#bbb', text: '#333' };

/** Draw the cart and pole of `state` (offset `at`) into the rectangle (x0, y0, w, h) of `ctx`. */
export function drawCartPole(ctx, state, at, [x0, y0, w, h], { detail = true } = {}) {
  const scale = w / WORLD_WIDTH;
  const trackY = y0 + h * 0.72;
  const cartW = 0.5 * scale;
  const cartH = 0.3 * scale;
  const poleLen = 2 * LENGTH * scale;
  const cx = x0 + w / 2 + state[at] * scale;
  const theta = state[at + 2];
  ctx.fillStyle = COLORS.sky;
  ctx.fillRect(x0, y0, w, h);
  ctx.strokeStyle = COLORS.track;
  ctx.lineWidth = Math.max(1, scale * 0.02);
  ctx.beginPath();
  ctx.moveTo(x0, trackY);
  ctx.lineTo(x0 + w, trackY);
  ctx.stroke();
  if (detail) {
    ctx.strokeStyle = COLORS.edge; // where the episode ends: |x| > 2.4
    for (const edge of [-X_THRESHOLD, X_THRESHOLD]) {
      const ex = x0 + w / 2 + edge * scale;
      ctx.beginPath();
      ctx.moveTo(ex, trackY - cartH);
      ctx.lineTo(ex, trackY + cartH / 2);
      ctx.stroke();
    }
  }
  ctx.fillStyle = COLORS.cart;
  ctx.fillRect(cx - cartW / 2, trackY - cartH, cartW, cartH);
  const ax = cx;
  const ay = trackY - cartH * 0.75;
  ctx.strokeStyle = COLORS.pole;
  ctx.lineCap = 'round';
  ctx.lineWidth = Math.max(2, 0.1 * scale);
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  ctx.lineTo(ax + poleLen * Math.sin(theta), ay - poleLen * Math.cos(theta));
  ctx.stroke();
  ctx.fillStyle = COLORS.axle;
  ctx.beginPath();
  ctx.arc(ax, ay, Math.max(1.5, 0.05 * scale), 0, 2 * Math.PI);
  ctx.fill();
}

/** Environment 0 large, with its step count in the episode. */
export function drawMain(canvas, env) {
  const ctx = canvas.getContext('2d');
  const one = env.envs[0];
  drawCartPole(ctx, one.state, 0, [0, 0, canvas.width, canvas.height]);
  ctx.fillStyle = COLORS.text;
  ctx.font = '14px system-ui, sans-serif';
  ctx.fillText(`environment 0 - step ${one.steps} of ${MAX_EPISODE_STEPS}`, 10, 20);
}

/** Environments 1.. as a grid of thumbnails (as many as fit); returns how many were drawn. */
export function drawThumbnails(canvas, env, { columns = 8, aspect = 0.5 } = {}) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width / columns;
  const h = w * aspect;
  const rows = Math.floor(canvas.height / h);
  const shown = Math.min(env.n - 1, columns * rows);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let k = 0; k < shown; k += 1) {
    const box = [(k % columns) * w + 1, Math.floor(k / columns) * h + 1, w - 2, h - 2];
    drawCartPole(ctx, env.envs[k + 1].state, 0, box, { detail: false });
  }
  return shown;
}

/** The mean of the last 100 episode rewards over time: `points` [{t, mean, mode}], y from 0 to 500 (exploit green). */
export function drawCurve(canvas, points, { top = MAX_EPISODE_STEPS, target = 475 } = {}) {
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  const pad = 28;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = '#ddd';
  ctx.fillStyle = '#777';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  for (const y of [0, 100, 200, 300, 400, 500]) {
    const py = h - pad / 2 - ((h - pad) * y) / top;
    ctx.beginPath();
    ctx.moveTo(pad, py);
    ctx.lineTo(w - 4, py);
    ctx.stroke();
    ctx.fillText(String(y), 2, py + 4);
  }
  const ty = h - pad / 2 - ((h - pad) * target) / top;
  ctx.strokeStyle = '#d08080';
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(pad, ty);
  ctx.lineTo(w - 4, ty);
  ctx.stroke();
  ctx.setLineDash([]);
  if (points.length < 2) return;
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  const at = ({ t, mean }) => [pad + ((w - pad - 4) * (t - t0)) / span, h - pad / 2 - ((h - pad) * Math.min(mean, top)) / top];
  ctx.lineWidth = 2;
  for (let i = 1; i < points.length; i += 1) {
    ctx.strokeStyle = points[i].mode === 'exploit' ? '#1a7f37' : '#2b4c7e';
    ctx.beginPath();
    ctx.moveTo(...at(points[i - 1]));
    ctx.lineTo(...at(points[i]));
    ctx.stroke();
  }
  ctx.fillStyle = '#777';
  ctx.fillText(`${span.toFixed(0)} s`, w - 40, h - 2);
}
